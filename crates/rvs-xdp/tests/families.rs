//! IPv6 and SCTP through the XDP program (BPF_PROG_TEST_RUN on crafted frames, after the plane
//! wrote its maps from real `Change`s): each forwarding method, checksums verified, IPVS's
//! hashes over IPv6 addresses, IPv6 persistence prefixes, SCTP's states. Needs root; skipped
//! with a message otherwise.

mod common;

use common::*;
use rvs_core::{
    Change, ConnState, DataPlane, DestConfig, ForwardMethod, PersistMask, Persistence, Protocol,
    SchedulerKind, ServiceConfig, ServiceKey, Tunnel,
};
use rvs_xdp::{DirectorAddr, XdpPlane};
use std::net::{IpAddr, SocketAddr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const VIP6: &str = "2001:db8::1";

fn service(
    p: &mut XdpPlane,
    key: ServiceKey,
    config: impl FnOnce(ServiceConfig) -> ServiceConfig,
    dests: &[(&str, ForwardMethod)],
) {
    let mut changes = vec![Change::ServiceAdded(config(ServiceConfig::new(key)))];
    for (addr, fwd) in dests {
        changes.push(Change::DestAdded {
            service: key,
            dest: DestConfig::new(sa(addr), *fwd),
        });
    }
    p.apply(&changes).expect("changes apply");
}

fn rr(c: ServiceConfig) -> ServiceConfig {
    c.with_scheduler(SchedulerKind::Rr)
}

#[test]
fn ipv6_direct_routing_changes_only_the_macs_and_lists_the_connection() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::tcp(sa("[2001:db8::1]:80"));
    service(
        &mut p,
        key,
        rr,
        &[("[2001:db8:1::12]:80", ForwardMethod::Route)],
    );
    let input = frame(ip("2001:db8:9::9"), ip(VIP6), TCP, &tcp(4000, 80, 0x02));
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        &out[0..6],
        &[2, 0, 0, 0, 1, 0x12],
        "to the real server's MAC"
    );
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    assert_eq!(&out[12..], &input[12..], "IPv6 and TCP untouched");
    // An IPv6 flow for no service, and an IPv4 one to the same-looking address, pass.
    let other = frame(
        ip("2001:db8:9::9"),
        ip("2001:db8::2"),
        TCP,
        &tcp(4000, 80, 0x02),
    );
    assert_eq!(run(&mut p, &other).0, XDP_PASS);
    let v4 = frame(
        ip("198.18.9.9"),
        ip("32.1.13.184"),
        TCP,
        &tcp(4000, 80, 0x02),
    );
    assert_eq!(
        run(&mut p, &v4).0,
        XDP_PASS,
        "the family is part of the key"
    );
    let conns = p.connections().expect("the plane reads its connections");
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].client, sa("[2001:db8:9::9]:4000"));
    assert_eq!(conns[0].dest, sa("[2001:db8:1::12]:80"));
    assert_eq!(conns[0].state, ConnState::SynRecv);
    assert_eq!(
        p.stats().expect("the plane reads its counters")[0].dests[0]
            .counters
            .conns,
        1
    );
}

#[test]
fn ipv6_tunnelling_wraps_the_packet_in_an_outer_ipv6_header() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::udp(sa("[2001:db8::1]:53"));
    service(
        &mut p,
        key,
        rr,
        &[("[2001:db8:1::13]:53", ForwardMethod::Tunnel(Tunnel::IPIP))],
    );
    let input = frame(ip("2001:db8:9::9"), ip(VIP6), UDP, &udp(5353, 53, b"query"));
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), input.len() + 40);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 0x13]);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let outer = &out[14..54];
    assert_eq!(
        &outer[0..4],
        &input[14..18],
        "version, class and flow label copied"
    );
    assert_eq!(
        u16::from_be_bytes([outer[4], outer[5]]),
        u16::try_from(input.len() - 14).unwrap()
    );
    assert_eq!(outer[6], 41, "IPv6-in-IPv6");
    assert_eq!(
        &outer[8..24],
        &ip("2001:db8::fe")
            .to_canonical()
            .to_string()
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(
        &outer[24..40],
        &"2001:db8:1::13"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(&out[54..], &input[14..], "the inner packet is intact");
}

#[test]
fn ipv6_nat_rewrites_both_ways_with_valid_checksums() {
    if !can_run() {
        return;
    }
    for (proto, key, l4_in) in [
        (
            TCP,
            ServiceKey::tcp(sa("[2001:db8::1]:80")),
            tcp(4100, 80, 0x02),
        ),
        (
            UDP,
            ServiceKey::udp(sa("[2001:db8::1]:80")),
            udp(4100, 80, b"hello, real server"),
        ),
    ] {
        let mut p = plane();
        service(
            &mut p,
            key,
            rr,
            &[("[2001:db8:1::14]:8080", ForwardMethod::Masq)],
        );
        let input = frame(ip("2001:db8:9::9"), ip(VIP6), proto, &l4_in);
        assert_eq!(l4_sum(&input), 0);
        let (verdict, out) = run(&mut p, &input);
        assert_eq!(verdict, XDP_TX, "{proto}");
        assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 0x14]);
        assert_eq!(&out[22..38], &input[22..38], "the client stays the source");
        assert_eq!(
            &out[38..54],
            &"2001:db8:1::14"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(u16::from_be_bytes([out[56], out[57]]), 8080);
        assert_eq!(
            l4_sum(&out),
            0,
            "{proto}: the checksum verifies after the rewrite"
        );
        // The reply from the real server gets the VIP back.
        let l4_back = if proto == TCP {
            tcp(8080, 4100, 0x12)
        } else {
            udp(8080, 4100, b"hello, client")
        };
        let reply = frame(ip("2001:db8:1::14"), ip("2001:db8:9::9"), proto, &l4_back);
        let (verdict, back) = run(&mut p, &reply);
        assert_eq!(verdict, XDP_TX, "{proto}");
        assert_eq!(&back[0..6], &CLIENT_MAC, "back to the client's MAC");
        assert_eq!(
            &back[22..38],
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "from the VIP"
        );
        assert_eq!(u16::from_be_bytes([back[54], back[55]]), 80);
        assert_eq!(l4_sum(&back), 0, "{proto}: the reply's checksum verifies");
    }
}

/// sh hashes IPv6 clients by the XOR of their address words (IPVS's addr_fold): every flow
/// lands where the core's sh sends it.
#[test]
fn ipv6_clients_are_hashed_as_the_kernel_folds_them() {
    use rand::SeedableRng;
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::tcp(sa("[2001:db8::1]:80"));
    let dests: Vec<(String, ForwardMethod)> = (0x21..0x25)
        .map(|i| (format!("[2001:db8:1::{i:x}]:80"), ForwardMethod::Route))
        .collect();
    let refs: Vec<(&str, ForwardMethod)> = dests.iter().map(|(a, f)| (a.as_str(), *f)).collect();
    service(&mut p, key, |c| c.with_scheduler(SchedulerKind::Sh), &refs);
    let mut core = rvs_core::Table::new();
    core.apply_change(&Change::ServiceAdded(
        ServiceConfig::new(key).with_scheduler(SchedulerKind::Sh),
    ))
    .unwrap();
    for (a, f) in &refs {
        core.apply_change(&Change::DestAdded {
            service: key,
            dest: DestConfig::new(sa(a), *f),
        })
        .unwrap();
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let mut seen = std::collections::HashSet::new();
    for i in 0..200u32 {
        let client: IpAddr = std::net::Ipv6Addr::new(
            0x2001,
            0xdb8,
            9,
            0,
            (i * 7919) as u16,
            0,
            (i >> 3) as u16,
            i as u16,
        )
        .into();
        let flow = rvs_core::Flow {
            client: SocketAddr::new(client, 1000),
            local: sa("[2001:db8::1]:80"),
        };
        let expected = core
            .service_mut(&key)
            .unwrap()
            .schedule(&flow, true, rvs_core::Timestamp::ZERO, &mut rng)
            .unwrap()
            .dest;
        let (verdict, out) = run(&mut p, &frame(client, ip(VIP6), TCP, &tcp(1000, 80, 0x02)));
        assert_eq!(verdict, XDP_TX);
        let IpAddr::V6(d) = expected.ip() else {
            panic!()
        };
        assert_eq!(out[5], d.octets()[15], "{client}");
        seen.insert(out[5]);
    }
    assert_eq!(
        seen.len(),
        4,
        "the hash spreads clients over every real server"
    );
}

#[test]
fn ipv6_persistence_keeps_a_client_prefix_on_one_real_server() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::tcp(sa("[2001:db8::1]:443"));
    let persist = |c: ServiceConfig| {
        let mut c = rr(c);
        c.persistence = Some(Persistence {
            timeout: 300,
            netmask: PersistMask::V6(64),
        });
        c
    };
    service(
        &mut p,
        key,
        persist,
        &[
            ("[2001:db8:1::31]:443", ForwardMethod::Route),
            ("[2001:db8:1::32]:443", ForwardMethod::Route),
        ],
    );
    let first = run(
        &mut p,
        &frame(ip("2001:db8:9:1::5"), ip(VIP6), TCP, &tcp(2000, 443, 0x02)),
    )
    .1[5];
    for (i, client) in ["2001:db8:9:1::6", "2001:db8:9:1:ffff::7", "2001:db8:9:1::5"]
        .iter()
        .enumerate()
    {
        let out = run(
            &mut p,
            &frame(ip(client), ip(VIP6), TCP, &tcp(2001 + i as u16, 443, 0x02)),
        )
        .1;
        assert_eq!(out[5], first, "{client} is in the same /64");
    }
    // rr moved on once: a client of another /64 gets the other real server.
    let other = run(
        &mut p,
        &frame(ip("2001:db8:9:2::5"), ip(VIP6), TCP, &tcp(2100, 443, 0x02)),
    )
    .1[5];
    assert_ne!(other, first);
    let templates: Vec<_> = p
        .connections()
        .expect("the plane reads its connections")
        .into_iter()
        .filter(|c| c.state == ConnState::None)
        .collect();
    assert_eq!(templates.len(), 2, "{templates:?}");
    assert!(
        templates
            .iter()
            .any(|t| t.client == sa("[2001:db8:9:1::]:0")),
        "{templates:?}"
    );
}

#[test]
fn sctp_associations_are_forwarded_and_tracked_by_their_chunks() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::Inet {
        protocol: Protocol::Sctp,
        addr: sa("198.18.0.1:3868"),
    };
    service(
        &mut p,
        key,
        rr,
        &[("198.18.1.41:3868", ForwardMethod::Route)],
    );
    let state = |p: &XdpPlane| p.connections().expect("the plane reads its connections")[0].state;
    let send = |p: &mut XdpPlane, chunk: u8| {
        let input = frame(
            ip("198.18.9.9"),
            ip("198.18.0.1"),
            SCTP,
            &sctp(5000, 3868, chunk),
        );
        let (verdict, out) = run(p, &input);
        assert_eq!(verdict, XDP_TX);
        assert_eq!(
            &out[12..],
            &input[12..],
            "the packet and its CRC32c are untouched"
        );
        assert_eq!(out[5], 41);
    };
    send(&mut p, 1); // INIT
    assert_eq!(state(&p), ConnState::SynRecv);
    send(&mut p, 10); // COOKIE ECHO
    assert_eq!(state(&p), ConnState::Established);
    send(&mut p, 0); // DATA
    assert_eq!(state(&p), ConnState::Established);
    assert_eq!(
        p.stats().expect("the plane reads its counters")[0].dests[0]
            .conns
            .active,
        1
    );
    send(&mut p, 7); // SHUTDOWN
    assert_eq!(state(&p), ConnState::FinWait);
    send(&mut p, 6); // ABORT
    assert_eq!(state(&p), ConnState::Close);
    assert_eq!(
        p.connections().expect("the plane reads its connections")[0].virtual_,
        rvs_core::ConnVirtual::Addr {
            protocol: Protocol::Sctp,
            addr: sa("198.18.0.1:3868")
        }
    );
}

#[test]
fn sctp_nat_to_the_same_port_rewrites_only_the_addresses() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::Inet {
        protocol: Protocol::Sctp,
        addr: sa("[2001:db8::1]:3868"),
    };
    service(
        &mut p,
        key,
        rr,
        &[("[2001:db8:1::42]:3868", ForwardMethod::Masq)],
    );
    let input = frame(ip("2001:db8:9::9"), ip(VIP6), SCTP, &sctp(5000, 3868, 1));
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        &out[38..54],
        &"2001:db8:1::42"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(
        &out[54..],
        &input[54..],
        "ports, tag and CRC32c unchanged (it covers no address)"
    );
    let reply = frame(
        ip("2001:db8:1::42"),
        ip("2001:db8:9::9"),
        SCTP,
        &sctp(3868, 5000, 2),
    );
    let (verdict, back) = run(&mut p, &reply);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        &back[22..38],
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(&back[54..], &reply[54..]);
}

#[test]
fn what_the_program_cannot_carry_is_refused_with_its_reason() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let v4 = ServiceKey::tcp(sa("198.18.0.1:80"));
    service(&mut p, v4, rr, &[]);
    let refused = |p: &mut XdpPlane, service: ServiceKey, dest: &str, fwd: ForwardMethod| {
        p.apply(&[Change::DestAdded {
            service,
            dest: DestConfig::new(sa(dest), fwd),
        }])
        .unwrap_err()
        .to_string()
    };
    let e = refused(
        &mut p,
        v4,
        "[2001:db8:1::5]:80",
        ForwardMethod::Tunnel(Tunnel::IPIP),
    );
    assert!(e.contains("other address family"), "{e}");
    let sctp = ServiceKey::Inet {
        protocol: Protocol::Sctp,
        addr: sa("198.18.0.1:3868"),
    };
    service(&mut p, sctp, rr, &[]);
    let e = refused(&mut p, sctp, "198.18.1.5:3869", ForwardMethod::Masq);
    assert!(e.contains("CRC32c") && e.contains("3869"), "{e}");
    assert!(
        p.connections()
            .expect("the plane reads its connections")
            .is_empty()
            && p.stats()
                .expect("the plane reads its counters")
                .iter()
                .all(|s| s.dests.is_empty()),
        "nothing half-applied"
    );
    // A director without a global IPv6 address cannot be a tunnel's outer source.
    let director = DirectorAddr {
        tunnel_src: "198.18.0.254".parse().unwrap(),
        tunnel_src6: None,
    };
    let mut bare = XdpPlane::load(director, Box::new(FakeNeighbors)).unwrap();
    let v6 = ServiceKey::tcp(sa("[2001:db8::1]:80"));
    service(&mut bare, v6, rr, &[]);
    let e = refused(
        &mut bare,
        v6,
        "[2001:db8:1::5]:80",
        ForwardMethod::Tunnel(Tunnel::IPIP),
    );
    assert!(e.contains("global IPv6 address"), "{e}");
    assert!(bare
        .apply(&[Change::DestAdded {
            service: v6,
            dest: DestConfig::new(sa("[2001:db8:1::5]:80"), ForwardMethod::Route)
        }])
        .is_ok());
}
