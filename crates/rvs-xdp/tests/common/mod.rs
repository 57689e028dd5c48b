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

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SCTP: u8 = 132;

/// A TCP header with these flags (checksum left zero).
pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// A UDP datagram with a payload (checksum left zero).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

/// An SCTP packet of one chunk of type `chunk` (verification tag and CRC32c are arbitrary:
/// the director never checks nor changes them).
pub fn sctp(sport: u16, dport: u16, chunk: u8) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0xa1, 0xb2, 0xc3, 0xd4, 0x11, 0x22, 0x33, 0x44]);
    h.extend_from_slice(&[chunk, 0, 0, 4]);
    h
}

/// An Ethernet frame carrying `l4` from `src` to `dst` (IPv4 or IPv6), with a valid TCP or
/// UDP checksum.
pub fn frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = DIRECTOR_MAC.to_vec();
    p.extend_from_slice(&CLIENT_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&0x0800u16.to_be_bytes());
            let len = u16::try_from(20 + l4.len()).unwrap();
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
            ip[2..4].copy_from_slice(&len.to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let ck = checksum(&ip);
            ip[10..12].copy_from_slice(&ck.to_be_bytes());
            p.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&0x86ddu16.to_be_bytes());
            p.extend_from_slice(&[0x60, 0x01, 0x23, 0x45]);
            p.extend_from_slice(&u16::try_from(l4.len()).unwrap().to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("one family"),
    }
    p.extend_from_slice(l4);
    let off = l4_offset(&p);
    let sum_at = match proto {
        TCP => Some(off + 16),
        UDP => Some(off + 6),
        _ => None,
    };
    if let Some(at) = sum_at {
        let c = l4_sum(&p);
        p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Where the L4 header of an Ethernet + IPv4/IPv6 frame starts.
pub fn l4_offset(f: &[u8]) -> usize {
    if f[12..14] == [0x86, 0xdd] {
        54
    } else {
        34
    }
}

/// The one's-complement sum over the pseudo-header and the L4 segment: 0 when the frame's TCP
/// or UDP checksum verifies.
pub fn l4_sum(f: &[u8]) -> u16 {
    let off = l4_offset(f);
    let seg = &f[off..];
    let len = u32::try_from(seg.len()).unwrap();
    let mut pseudo = if off == 54 {
        let mut p = f[22..54].to_vec();
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, f[20]]);
        p
    } else {
        let mut p = f[26..34].to_vec();
        p.extend_from_slice(&[0, f[23]]);
        p.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        p
    };
    pseudo.extend_from_slice(seg);
    checksum(&pseudo)
}
