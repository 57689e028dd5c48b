//! One source of truth for the C/Rust ABI: every `#define RVS_*` of
//! `bpf/include/rvs_structs.h` has its Rust constant with the same value, and every Rust
//! constant listed here is defined in C. No root, no clang needed.

use rvs_bpf_abi as abi;
use std::collections::BTreeMap;

/// The header's numeric `#define`s: name to value.
fn defines() -> BTreeMap<String, u64> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bpf/include/rvs_structs.h"
    );
    let text = std::fs::read_to_string(path).expect("rvs_structs.h");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#define "))
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            let (name, value) = (w.next()?, w.next()?);
            let value = value
                .strip_prefix("0x")
                .map_or_else(|| value.parse().ok(), |h| u64::from_str_radix(h, 16).ok())?;
            Some((name.to_owned(), value))
        })
        .collect()
}

#[test]
fn every_define_matches_its_rust_constant() {
    let rust: BTreeMap<&str, u64> = [
        ("RVS_RING_SIZE", u64::from(abi::RING_SIZE)),
        ("RVS_MAX_SERVICES", u64::from(abi::MAX_SERVICES)),
        ("RVS_MAX_DESTS", u64::from(abi::MAX_DESTS)),
        ("RVS_CONN_TABLE", u64::from(abi::CONN_TABLE)),
        ("RVS_FWD_ROUTE", u64::from(abi::FWD_ROUTE)),
        ("RVS_FWD_TUNNEL", u64::from(abi::FWD_TUNNEL)),
        ("RVS_FWD_MASQ", u64::from(abi::FWD_MASQ)),
        ("RVS_TUN_IPIP", u64::from(abi::TUN_IPIP)),
        ("RVS_TUN_GUE", u64::from(abi::TUN_GUE)),
        ("RVS_TUN_GRE", u64::from(abi::TUN_GRE)),
        ("RVS_TUN_CSUM", u64::from(abi::TUN_CSUM)),
        ("RVS_AF_INET", u64::from(abi::AF_INET)),
        ("RVS_AF_INET6", u64::from(abi::AF_INET6)),
        ("RVS_PICK_CURSOR", u64::from(abi::PICK_CURSOR)),
        ("RVS_PICK_SRC", u64::from(abi::PICK_SRC)),
        ("RVS_PICK_SRC_PORT", u64::from(abi::PICK_SRC_PORT)),
        ("RVS_PICK_DST", u64::from(abi::PICK_DST)),
        ("RVS_PICK_LC", u64::from(abi::PICK_LC)),
        ("RVS_PICK_WLC", u64::from(abi::PICK_WLC)),
        ("RVS_PICK_SED", u64::from(abi::PICK_SED)),
        ("RVS_PICK_NQ", u64::from(abi::PICK_NQ)),
        ("RVS_PICK_OVF", u64::from(abi::PICK_OVF)),
        ("RVS_PICK_FO", u64::from(abi::PICK_FO)),
        ("RVS_PICK_TWOS", u64::from(abi::PICK_TWOS)),
        ("RVS_PICK_LBLC", u64::from(abi::PICK_LBLC)),
        ("RVS_PICK_MH", u64::from(abi::PICK_MH)),
        ("RVS_PICK_LBLCR", u64::from(abi::PICK_LBLCR)),
        ("RVS_LBLCR_MAX", u64::from(abi::LBLCR_MAX)),
        ("RVS_MH_FALLBACK", u64::from(abi::MH_FALLBACK)),
        ("RVS_MH_PORT", u64::from(abi::MH_PORT)),
        ("RVS_MH_SIZE", u64::from(abi::MH_SIZE)),
        ("RVS_V_PASSED", u64::from(abi::verdict::PASSED)),
        ("RVS_V_FORWARDED", u64::from(abi::verdict::FORWARDED)),
        ("RVS_V_TUNNELLED", u64::from(abi::verdict::TUNNELLED)),
        ("RVS_V_NAT_REPLY", u64::from(abi::verdict::NAT_REPLY)),
        ("RVS_V_TO_KERNEL", u64::from(abi::verdict::TO_KERNEL)),
        ("RVS_V_NO_DEST", u64::from(abi::verdict::NO_DEST)),
        ("RVS_V_NO_HOP", u64::from(abi::verdict::NO_HOP)),
        ("RVS_V_BAD_DEST", u64::from(abi::verdict::BAD_DEST)),
        ("RVS_V_TUN_DROP", u64::from(abi::verdict::TUN_DROP)),
        ("RVS_VERDICTS", u64::from(abi::verdict::COUNT)),
        ("RVS_ST_NONE", u64::from(abi::state::NONE)),
        ("RVS_ST_SYN_RECV", u64::from(abi::state::SYN_RECV)),
        ("RVS_ST_ESTABLISHED", u64::from(abi::state::ESTABLISHED)),
        ("RVS_ST_FIN_WAIT", u64::from(abi::state::FIN_WAIT)),
        ("RVS_ST_CLOSE", u64::from(abi::state::CLOSE)),
        ("RVS_ST_UDP", u64::from(abi::state::UDP)),
    ]
    .into();
    let c = defines();
    for (name, value) in &c {
        let Some(r) = rust.get(name.as_str()) else {
            panic!("{name} ({value}) in rvs_structs.h has no Rust constant listed here");
        };
        assert_eq!(r, value, "{name}: Rust {r}, C {value}");
    }
    for name in rust.keys() {
        assert!(
            c.contains_key(*name),
            "{name} is not defined in rvs_structs.h"
        );
    }
}

/// The maps a C file declares (`} NAME SEC(".maps");`), in order.
fn declared_maps(file: &str) -> Vec<String> {
    let path = format!("{}/../../bpf/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("} ")?
                .strip_suffix(" SEC(\".maps\");")
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn the_map_names_are_the_cs() {
    let mut xdp = declared_maps("xdp/maps.h");
    let mut ours: Vec<String> = abi::maps::XDP.iter().map(|s| (*s).to_owned()).collect();
    xdp.sort();
    ours.sort();
    assert_eq!(xdp, ours, "bpf/xdp/maps.h against rvs_bpf_abi::maps::XDP");
    let mut decap = declared_maps("rvs_tc_decap.bpf.c");
    let mut ours: Vec<String> = abi::maps::DECAP.iter().map(|s| (*s).to_owned()).collect();
    decap.sort();
    ours.sort();
    assert_eq!(
        decap, ours,
        "bpf/rvs_tc_decap.bpf.c against rvs_bpf_abi::maps::DECAP"
    );
}
