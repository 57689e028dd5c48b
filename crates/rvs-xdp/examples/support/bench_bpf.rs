//! The benchmarks' own BPF programs (`bpf/bench_*.bpf.c`), compiled with clang when a
//! benchmark starts, so the production build (build.rs) compiles only rvs's programs. The
//! flags are build.rs's.

use std::path::PathBuf;
use std::process::Command;

/// The object file of `bpf/NAME.bpf.c`, freshly compiled.
///
/// # Panics
/// When clang is missing or fails: a benchmark cannot run without its program.
pub fn object(name: &str) -> Vec<u8> {
    let bpf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    let out = std::env::temp_dir().join(format!("rvs-{name}-{}.o", std::process::id()));
    let mut cmd = Command::new(&clang);
    cmd.args([
        "-target", "bpfel", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
    ])
    .arg("-I")
    .arg(&bpf);
    if let Some(triple) = Command::new(&clang)
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
    {
        let dir = PathBuf::from("/usr/include").join(triple.trim());
        if dir.exists() {
            cmd.arg("-I").arg(dir);
        }
    }
    let status = cmd
        .arg("-c")
        .arg(bpf.join(format!("{name}.bpf.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("run {clang} (apt-get install clang libbpf-dev): {e}"));
    assert!(status.success(), "clang failed on bpf/{name}.bpf.c");
    let bytes = std::fs::read(&out).expect("the compiled object");
    let _ = std::fs::remove_file(&out);
    bytes
}
