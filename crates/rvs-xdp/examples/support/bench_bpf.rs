//! The benchmarks' own BPF programs (`bpf/bench_*.bpf.c`), compiled with clang when a
//! benchmark starts, so the production build (build.rs) compiles only rvs's programs. The
//! flags are build.rs's (rvs-bpf-build).

use std::path::PathBuf;

/// The object file of `bpf/NAME.bpf.c`, freshly compiled.
///
/// # Panics
/// When clang is missing or fails: a benchmark cannot run without its program.
pub fn object(name: &str) -> Vec<u8> {
    let bpf = rvs_bpf_build::bpf_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let clang = rvs_bpf_build::find_clang().unwrap_or_else(|| {
        panic!("no clang to compile bpf/{name}.bpf.c (apt-get install clang libbpf-dev)")
    });
    let out = std::env::temp_dir().join(format!("rvs-{name}-{}.o", std::process::id()));
    rvs_bpf_build::compile(&clang, &bpf.join(format!("{name}.bpf.c")), &out, &bpf)
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&out).expect("the compiled object");
    let _ = std::fs::remove_file(&out);
    bytes
}
