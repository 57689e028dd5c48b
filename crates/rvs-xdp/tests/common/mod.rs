//! What the BPF_PROG_TEST_RUN tests share: a plane loaded with fixed addresses and MACs, a
//! runner, and checksums.
#![allow(dead_code, reason = "each test file uses its own part")]

use aya::programs::{TestRun, TestRunOptions};
use rvs_xdp::neighbors::Neighbors;
use rvs_xdp::{DirectorAddr, XdpPlane};
use std::net::IpAddr;

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd1];
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];

/// Real servers' MACs: 02:00:00:00:01:<last octet of the address>.
pub struct FakeNeighbors;
impl Neighbors for FakeNeighbors {
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        let last = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[15],
        };
        Some([2, 0, 0, 0, 1, last])
    }
}

pub fn can_run() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("skipped: loading BPF programs needs root");
        return false;
    }
    if let Err(e) = rvs_xdp::object() {
        eprintln!("skipped: {e}");
        return false;
    }
    true
}

/// A plane loaded in a network namespace of the calling test's thread's own, where forwarding
/// is off and nothing is routed: the program's FIB lookups find nothing, so frames get the
/// MACs the plane wrote (FakeNeighbors') and leave the way they came (XDP_TX).
pub fn plane() -> XdpPlane {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("a network namespace for the test's thread");
    load_plane()
}

/// A plane loaded in the thread's current network namespace.
pub fn load_plane() -> XdpPlane {
    let director = DirectorAddr {
        tunnel_src: "198.18.0.254".parse().unwrap(),
        tunnel_src6: Some("2001:db8::fe".parse().unwrap()),
    };
    XdpPlane::load(director, Box::new(FakeNeighbors)).expect("the program loads")
}

pub fn run(plane: &mut XdpPlane, input: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; input.len() + 64];
    let r = plane
        .program()
        .unwrap()
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })
        .expect("test run");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// The one's-complement checksum of `data` (IPv4 header, or pseudo-header + TCP segment).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
