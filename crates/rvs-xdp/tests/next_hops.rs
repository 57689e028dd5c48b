//! Next hops from the kernel's FIB: the test's thread enters a network namespace of its own
//! with two interfaces (real servers behind one, clients behind the other), forwarding on
//! and permanent neighbour entries; the program must take the MACs and the egress interface
//! from bpf_fib_lookup and redirect frames there, both ways of NAT included. Needs root;
//! skipped with a message otherwise. The namespace is removed afterwards, on failure too.

mod common;

use common::*;
use rvs_core::{
    Change, DataPlane, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey,
};
use std::net::SocketAddr;
use std::process::Command;

const XDP_REDIRECT: u32 = 4;

/// A named network namespace the thread has entered; deleted on drop.
struct Netns(String);

impl Netns {
    fn enter(tag: &str) -> Self {
        let name = format!("rvs-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Self(name);
        let f = std::fs::File::open(format!("/var/run/netns/{}", ns.0)).expect("the namespace");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the namespace");
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn sysctl(&self, kv: &str) {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.0, "sysctl", "-qw", kv])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sysctl {kv}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn mac(&self, dev: &str) -> [u8; 6] {
        let o = Command::new("ip")
            .args(["-n", &self.0, "-o", "link", "show", dev])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "link/ether")
            .expect("an Ethernet address");
        let mut mac = [0u8; 6];
        for (m, p) in mac.iter_mut().zip(words[at + 1].split(':')) {
            *m = u8::from_str_radix(p, 16).unwrap();
        }
        mac
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The lab: d0 towards the real servers (198.18.5.0/24, 2001:db8:5::/64), d1 towards the
/// clients (198.18.6.0/24), forwarding on.
fn lab(tag: &str) -> Netns {
    let ns = Netns::enter(tag);
    ns.ip(&["link", "set", "lo", "up"]);
    for (dev, v4, v6) in [
        ("d0", "198.18.5.1/24", "2001:db8:5::1/64"),
        ("d1", "198.18.6.1/24", "2001:db8:6::1/64"),
    ] {
        // veth pairs, as this kernel has no dummy driver; the peers only keep the links up.
        let peer = format!("{dev}p");
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", &peer]);
        ns.ip(&["link", "set", &peer, "up"]);
        ns.ip(&["link", "set", dev, "up"]);
        ns.ip(&["addr", "add", v4, "dev", dev]);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
    }
    for (addr, mac, dev) in [
        ("198.18.5.20", "02:00:00:00:05:20", "d0"),
        ("2001:db8:5::20", "02:00:00:00:55:20", "d0"),
        ("198.18.6.9", "02:00:00:00:06:09", "d1"),
    ] {
        ns.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }
    ns.sysctl("net.ipv4.conf.all.forwarding=1");
    ns.sysctl("net.ipv6.conf.all.forwarding=1");
    ns
}

/// A TCP SYN (or another flag) frame, IPv4 or IPv6, addressed to the director's MAC.
fn tcp_frame(from: SocketAddr, to: SocketAddr, flags: u8) -> Vec<u8> {
    let mut p = DIRECTOR_MAC.to_vec();
    p.extend_from_slice(&CLIENT_MAC);
    match (from, to) {
        (SocketAddr::V4(f), SocketAddr::V4(t)) => {
            p.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&f.ip().octets());
            p.extend_from_slice(&t.ip().octets());
            let c = checksum(&p[14..34]);
            p[24..26].copy_from_slice(&c.to_be_bytes());
        }
        (SocketAddr::V6(f), SocketAddr::V6(t)) => {
            p.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64]);
            p.extend_from_slice(&f.ip().octets());
            p.extend_from_slice(&t.ip().octets());
        }
        _ => panic!("one family"),
    }
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn add(plane: &mut rvs_xdp::XdpPlane, vip: &str, real: &str, fwd: ForwardMethod) {
    let key = ServiceKey::tcp(sa(vip));
    plane
        .apply(&[
            Change::ServiceAdded(ServiceConfig::new(key).with_scheduler(SchedulerKind::Rr)),
            Change::DestAdded {
                service: key,
                dest: DestConfig::new(sa(real), fwd),
            },
        ])
        .expect("changes apply");
}

#[test]
fn frames_take_the_fibs_next_hop_and_leave_by_its_interface() {
    if !can_run() {
        return;
    }
    let ns = lab("fib");
    let (d0, d1) = (ns.mac("d0"), ns.mac("d1"));
    // The plane finds no neighbour entries itself: every MAC must come from the FIB.
    let director = rvs_xdp::DirectorAddr {
        tunnel_src: "198.18.5.1".parse().unwrap(),
        tunnel_src6: None,
    };
    let mut p = rvs_xdp::XdpPlane::load(director, Box::new(NoNeighbors)).unwrap();
    p.add_tx_port("d0").expect("d0 joins the devmap");
    p.add_tx_port("d1").expect("d1 joins the devmap");
    assert!(p
        .add_tx_port("nonesuch")
        .unwrap_err()
        .to_string()
        .contains("nonesuch"));

    // Direct routing, IPv4 and IPv6: the real server's MAC from the neighbour table (not the
    // plane's fallback 02:00:00:00:01:xx), the source MAC of d0, redirected to d0.
    add(
        &mut p,
        "198.18.0.1:80",
        "198.18.5.20:80",
        ForwardMethod::Route,
    );
    let (verdict, out) = run(
        &mut p,
        &tcp_frame(sa("198.18.6.9:4000"), sa("198.18.0.1:80"), 0x02),
    );
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 5, 0x20]);
    assert_eq!(&out[6..12], &d0);
    add(
        &mut p,
        "[2001:db8::1]:80",
        "[2001:db8:5::20]:80",
        ForwardMethod::Route,
    );
    let (verdict, out) = run(
        &mut p,
        &tcp_frame(sa("[2001:db8:6::9]:4000"), sa("[2001:db8::1]:80"), 0x02),
    );
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 0x55, 0x20]);
    assert_eq!(&out[6..12], &d0);

    // NAT: out by d0 to the real server, and its reply out by d1 to the client's MAC.
    add(
        &mut p,
        "198.18.0.1:81",
        "198.18.5.20:8080",
        ForwardMethod::Masq,
    );
    let (verdict, out) = run(
        &mut p,
        &tcp_frame(sa("198.18.6.9:4001"), sa("198.18.0.1:81"), 0x02),
    );
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        (&out[0..6], &out[6..12]),
        (&[2, 0, 0, 0, 5, 0x20][..], &d0[..])
    );
    assert_eq!(&out[30..34], &[198, 18, 5, 20]);
    let (verdict, back) = run(
        &mut p,
        &tcp_frame(sa("198.18.5.20:8080"), sa("198.18.6.9:4001"), 0x12),
    );
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        &back[0..6],
        &[2, 0, 0, 0, 6, 9],
        "to the client's MAC, found by the FIB"
    );
    assert_eq!(&back[6..12], &d1, "from d1, the client's side");
    assert_eq!(&back[26..30], &[198, 18, 0, 1], "from the VIP");

    // A real server the FIB has no neighbour for (routed through d0, never resolved), and no
    // fallback MAC: NAT leaves the rewritten packet to the kernel, which resolves it; direct
    // routing cannot, and drops.
    add(
        &mut p,
        "198.18.0.1:82",
        "198.18.5.77:80",
        ForwardMethod::Masq,
    );
    add(
        &mut p,
        "198.18.0.1:83",
        "198.18.5.77:80",
        ForwardMethod::Route,
    );
    let (verdict, out) = run(
        &mut p,
        &tcp_frame(sa("198.18.6.9:4002"), sa("198.18.0.1:82"), 0x02),
    );
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(
        &out[30..34],
        &[198, 18, 5, 77],
        "rewritten before it goes to the kernel"
    );
    let (verdict, _) = run(
        &mut p,
        &tcp_frame(sa("198.18.6.9:4003"), sa("198.18.0.1:83"), 0x02),
    );
    assert_eq!(verdict, XDP_DROP);
    drop(ns);
}

/// Knows no neighbours.
struct NoNeighbors;
impl rvs_xdp::neighbors::Neighbors for NoNeighbors {
    fn mac(&self, _: std::net::IpAddr) -> Option<[u8; 6]> {
        None
    }
}

/// A TCP frame of `ip_len` bytes of IP (IPv4 with the don't-fragment flag as asked, or IPv6).
fn big_frame(from: SocketAddr, to: SocketAddr, ip_len: usize, df: bool) -> Vec<u8> {
    let mut f = tcp_frame(from, to, 0x10);
    let header = if from.is_ipv4() { 20 } else { 40 };
    f.resize(14 + ip_len, 0x5a);
    if from.is_ipv4() {
        f[16..18].copy_from_slice(&u16::try_from(ip_len).unwrap().to_be_bytes());
        f[20] = if df { 0x40 } else { 0 };
        f[24..26].fill(0);
        let c = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    } else {
        f[18..20].copy_from_slice(&u16::try_from(ip_len - header).unwrap().to_be_bytes());
    }
    f
}

#[test]
fn packets_a_tunnel_cannot_carry_get_the_icmp_error_ipvs_sends() {
    if !can_run() {
        return;
    }
    let ns = lab("mtu");
    let director = rvs_xdp::DirectorAddr {
        tunnel_src: "198.18.5.1".parse().unwrap(),
        tunnel_src6: Some("2001:db8:5::1".parse().unwrap()),
    };
    let mut p = rvs_xdp::XdpPlane::load(director, Box::new(NoNeighbors)).unwrap();
    let ipip = ForwardMethod::Tunnel(rvs_core::Tunnel::IPIP);
    let gue = ForwardMethod::Tunnel(rvs_core::Tunnel {
        kind: rvs_core::TunnelKind::Gue { port: 6080 },
        csum: rvs_core::TunnelCsum::NoCsum,
    });
    add(&mut p, "198.18.0.1:80", "198.18.5.20:80", ipip);
    add(&mut p, "198.18.0.1:81", "198.18.5.20:81", gue);
    add(&mut p, "[2001:db8::1]:80", "[2001:db8:5::20]:80", ipip);
    // Fits: tunnelled and redirected to d0 (MTU 1500).
    let small = big_frame(sa("198.18.6.9:5000"), sa("198.18.0.1:80"), 1480, true);
    let (verdict, out) = run(&mut p, &small);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out.len(), small.len() + 20);
    // Too big with DF: "fragmentation needed" to the client from the VIP, MTU 1500 - 20.
    for (port, overhead) in [(80u16, 20u16), (81, 32)] {
        let input = big_frame(
            sa("198.18.6.9:5001"),
            SocketAddr::from(([198, 18, 0, 1], port)),
            1500,
            true,
        );
        let (verdict, out) = run(&mut p, &input);
        assert_eq!(verdict, common::XDP_TX, "back to the client");
        assert_eq!(out.len(), 14 + 20 + 8 + 28);
        assert_eq!(&out[0..6], &input[6..12], "to the client's MAC");
        assert_eq!(&out[6..12], &input[0..6]);
        assert_eq!(checksum(&out[14..34]), 0, "the IP header verifies");
        assert_eq!(out[23], 1, "ICMP");
        assert_eq!(&out[26..30], &[198, 18, 0, 1], "from the VIP");
        assert_eq!(&out[30..34], &[198, 18, 6, 9], "to the client");
        assert_eq!(
            &out[34..36],
            &[3, 4],
            "destination unreachable, fragmentation needed"
        );
        assert_eq!(
            u16::from_be_bytes([out[40], out[41]]),
            1500 - overhead,
            "the MTU left"
        );
        assert_eq!(checksum(&out[34..]), 0, "the ICMP checksum verifies");
        assert_eq!(
            &out[42..],
            &input[14..42],
            "the packet's headers are quoted"
        );
    }
    // Too big without DF: IPVS would fragment the outer packet; rvs drops it.
    let input = big_frame(sa("198.18.6.9:5002"), sa("198.18.0.1:80"), 1500, false);
    assert_eq!(run(&mut p, &input).0, XDP_DROP);
    // IPv6: "packet too big", MTU 1500 - 40.
    let input = big_frame(
        sa("[2001:db8:6::9]:5003"),
        sa("[2001:db8::1]:80"),
        1500,
        true,
    );
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, common::XDP_TX);
    assert_eq!(out.len(), 14 + 40 + 8 + 48);
    assert_eq!(out[20], 58, "ICMPv6");
    assert_eq!(&out[22..38], &input[38..54], "from the VIP");
    assert_eq!(&out[38..54], &input[22..38], "to the client");
    assert_eq!((out[54], out[55]), (2, 0), "packet too big");
    assert_eq!(
        u32::from_be_bytes([out[58], out[59], out[60], out[61]]),
        1460
    );
    let mut pseudo = out[22..54].to_vec();
    pseudo.extend_from_slice(&56u32.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&out[54..]);
    assert_eq!(checksum(&pseudo), 0, "the ICMPv6 checksum verifies");
    assert_eq!(&out[62..], &input[14..62]);
    // The MTU is kept with the next hop and looked up again with it: a second after d0's MTU
    // drops to 1400, the packet that fitted gets the error with the new MTU.
    ns.ip(&["link", "set", "d0", "mtu", "1400"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (verdict, out) = run(&mut p, &small);
    assert_eq!(verdict, common::XDP_TX, "too big for the new MTU");
    assert_eq!(u16::from_be_bytes([out[40], out[41]]), 1400 - 20);
    drop(ns);
}
