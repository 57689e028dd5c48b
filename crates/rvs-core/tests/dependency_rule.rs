//! The dependency rule of docs/architecture.md, read from `cargo metadata`: the core depends on
//! no rvs crate; the data planes depend on the core only (the xdp plane also on its ABI
//! crate, the BPF build chain and the host crate); the host crate on no rvs crate but the
//! ABI and the build chain; rvsadm on rvs-ipvsadm, rvs-proto and the client only; nothing depends on the
//! binaries' crates, rvsd and rvsadm.

use std::collections::{BTreeMap, BTreeSet};

/// Each workspace crate and the rvs crates it depends on (normal and build dependencies).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|n| members.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn the_crates_keep_the_dependency_rule() {
    let g = graph();
    assert!(g.len() >= 9, "the workspace's crates: {g:?}");
    assert!(
        g["rvs-core"].is_empty(),
        "rvs-core depends on {:?}",
        g["rvs-core"]
    );
    assert_eq!(
        g["rvs-proxy"],
        BTreeSet::from(["rvs-core".to_owned()]),
        "the proxy plane depends on the core only"
    );
    assert_eq!(
        g["rvs-xdp"],
        BTreeSet::from([
            "rvs-core".to_owned(),
            "rvs-bpf-abi".to_owned(),
            "rvs-bpf-build".to_owned(),
            "rvs-host".to_owned()
        ]),
        "the xdp plane depends on the core, its own ABI and build chain, and the host crate only"
    );
    assert_eq!(
        g["rvs-host"],
        BTreeSet::from(["rvs-bpf-abi".to_owned(), "rvs-bpf-build".to_owned()]),
        "the host crate knows no table: only the ABI of its tc program"
    );
    assert!(
        g["rvs-bpf-build"].is_empty(),
        "the build chain depends on no rvs crate"
    );
    assert_eq!(
        g["rvs-config"],
        BTreeSet::from(["rvs-core".to_owned()]),
        "the configuration is pure: the core's types only"
    );
    assert_eq!(
        g["rvsadm"],
        BTreeSet::from([
            "rvs-ipvsadm".to_owned(),
            "rvs-proto".to_owned(),
            "rvs-client".to_owned()
        ]),
        "rvsadm is a thin main over rvs-ipvsadm and a client"
    );
    for (krate, deps) in &g {
        for binary in ["rvsd", "rvsadm"] {
            assert!(!deps.contains(binary), "{krate} depends on {binary}");
        }
    }
}
