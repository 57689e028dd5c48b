//! Compiles ../../bpf/rvs_xdp.bpf.c with clang into $OUT_DIR (see rvs-bpf-build). Without clang
//! the rest of rvs still builds: the object is left empty, `rvs_no_bpf` is set, and the xdp
//! plane says how to get it.

fn main() -> Result<(), String> {
    rvs_bpf_build::build_programs(&["rvs_xdp"])
}
