//! Compiles ../../bpf/{rvs_xdp,rvs_tc_decap}.bpf.c with clang into $OUT_DIR. Without clang the rest of rvs still
//! builds: the object is left empty, `rvs_no_bpf` is set, and the xdp plane says how to get it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn find_clang() -> Option<String> {
    if let Ok(c) = std::env::var("BPF_CLANG") {
        return Some(c);
    }
    ["clang", "clang-19", "clang-16", "clang-15", "clang-14"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

fn multiarch_include(clang: &str) -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BPF_INCLUDE") {
        return Some(PathBuf::from(dir));
    }
    let out = Command::new(clang).arg("-print-multiarch").output().ok()?;
    let triple = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    let dir = PathBuf::from("/usr/include").join(if triple.is_empty() {
        "x86_64-linux-gnu".to_owned()
    } else {
        triple
    });
    dir.exists().then_some(dir)
}

fn compile(clang: &str, src: &Path, out: &Path, bpf_dir: &Path) -> Result<()> {
    let mut cmd = Command::new(clang);
    cmd.args([
        "-target", "bpfel", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
    ])
    .arg("-I")
    .arg(bpf_dir);
    if let Some(inc) = multiarch_include(clang) {
        cmd.arg("-I").arg(inc);
    }
    if let Ok(extra) = std::env::var("BPF_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }
    let status = cmd
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out)
        .status()
        .with_context(|| format!("running {clang}"))?;
    if !status.success() {
        bail!("clang failed on {}", src.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    println!("cargo::rustc-check-cfg=cfg(rvs_no_bpf)");
    for var in ["BPF_CLANG", "BPF_INCLUDE", "BPF_CFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let bpf_dir = manifest.join("../../bpf");
    for dir in ["include", "xdp"] {
        for entry in std::fs::read_dir(bpf_dir.join(dir))? {
            println!("cargo:rerun-if-changed={}", entry?.path().display());
        }
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let have_headers = Path::new("/usr/include/bpf/bpf_helpers.h").exists();
    let clang = find_clang().filter(|_| have_headers);
    if clang.is_none() {
        println!("cargo:warning=clang or libbpf-dev is missing: the xdp data plane is not built (apt-get install clang libbpf-dev)");
        println!("cargo:rustc-cfg=rvs_no_bpf");
    }
    // The benchmarks compile their own programs (examples/support/bench_bpf.rs).
    for name in ["rvs_xdp", "rvs_tc_decap"] {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let out = out_dir.join(format!("{name}.o"));
        match &clang {
            Some(c) => compile(c, &src, &out, &bpf_dir)?,
            None => std::fs::write(&out, b"")?,
        }
    }
    Ok(())
}
