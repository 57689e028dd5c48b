//! The BPF build chain, shared by the build scripts of the crates that carry BPF programs
//! (rvs-xdp's XDP program, rvs-host's tc decapsulation program): it finds clang and libbpf's
//! headers and compiles a `bpf/*.bpf.c` file into `OUT_DIR`. Without them the rest of rvs still
//! builds: the object is left empty, the `rvs_no_bpf` cfg is set, and a cargo warning says what
//! to install.
//!
//! Environment: `BPF_CLANG` (the compiler), `BPF_INCLUDE` (the multiarch include directory),
//! `BPF_CFLAGS` (extra flags).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `bpf/` directory, seen from a crate under `crates/`.
#[must_use]
pub fn bpf_dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("../../bpf")
}

/// The clang to compile BPF with: `BPF_CLANG`, else the first of `clang`, `clang-19`, ... that runs.
#[must_use]
pub fn find_clang() -> Option<String> {
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

/// Compiles `src` to `out` with `clang`, the headers of `bpf_dir` on the include path.
///
/// # Errors
/// When clang cannot run or refuses the program.
pub fn compile(clang: &str, src: &Path, out: &Path, bpf_dir: &Path) -> Result<(), String> {
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
        .map_err(|e| format!("running {clang}: {e}"))?;
    if !status.success() {
        return Err(format!("clang failed on {}", src.display()));
    }
    Ok(())
}

/// For a build script: compiles each of `programs` (names of `bpf/NAME.bpf.c`) into
/// `OUT_DIR/NAME.o`, re-running when `bpf/` changes; without clang or libbpf-dev, writes empty
/// objects, sets `rvs_no_bpf` and warns.
///
/// # Errors
/// When a program does not compile, or the build script's environment is incomplete.
pub fn build_programs(programs: &[&str]) -> Result<(), String> {
    println!("cargo::rustc-check-cfg=cfg(rvs_no_bpf)");
    for var in ["BPF_CLANG", "BPF_INCLUDE", "BPF_CFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").map_err(|e| format!("CARGO_MANIFEST_DIR: {e}"))?,
    );
    let bpf = bpf_dir(&manifest);
    for dir in ["include", "xdp"] {
        let entries = std::fs::read_dir(bpf.join(dir))
            .map_err(|e| format!("read {}: {e}", bpf.join(dir).display()))?;
        for entry in entries.flatten() {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    let have_headers = Path::new("/usr/include/bpf/bpf_helpers.h").exists();
    let clang = find_clang().filter(|_| have_headers);
    if clang.is_none() {
        println!("cargo:warning=clang or libbpf-dev is missing: rvs's BPF programs are not built (apt-get install clang libbpf-dev)");
        println!("cargo:rustc-cfg=rvs_no_bpf");
    }
    for name in programs {
        let src = bpf.join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let out = out_dir.join(format!("{name}.o"));
        match &clang {
            Some(c) => compile(c, &src, &out, &bpf)?,
            None => {
                std::fs::write(&out, b"").map_err(|e| format!("write {}: {e}", out.display()))?
            }
        }
    }
    Ok(())
}
