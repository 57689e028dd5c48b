//! Compiles ../../bpf/rvs_tc_decap.bpf.c with clang into $OUT_DIR (see rvs-bpf-build); without
//! clang the object is empty and tunnel-mode real servers say how to get it.

fn main() -> Result<(), String> {
    rvs_bpf_build::build_programs(&["rvs_tc_decap"])
}
