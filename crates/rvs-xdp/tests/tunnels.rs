//! The XDP program's tunnel encapsulations on crafted frames (BPF_PROG_TEST_RUN): GUE
//! (`--tun-type gue --tun-port`) and GRE (`--tun-type gre`) over IPv4 and IPv6, without and
//! with `--tun-csum`, each outer header and checksum checked by a full computation. Needs root;
//! skipped with a message otherwise.

mod common;

use common::*;
use rvs_core::{
    Change, DataPlane, DestConfig, ForwardMethod, Protocol, SchedulerKind, ServiceConfig,
    ServiceKey, Tunnel, TunnelCsum, TunnelKind,
};
use rvs_xdp::XdpPlane;
use std::net::{IpAddr, SocketAddr};

const GUE_PORT: u16 = 6080;

fn tunnel(kind: TunnelKind, csum: TunnelCsum) -> ForwardMethod {
    ForwardMethod::Tunnel(Tunnel { kind, csum })
}

/// A plane with one service of `protocol` on `vip` tunnelling to `real`.
fn plane_with(protocol: Protocol, vip: &str, real: &str, fwd: ForwardMethod) -> XdpPlane {
    let mut p = plane();
    let key = ServiceKey::Inet {
        protocol,
        addr: vip.parse().unwrap(),
    };
    p.apply(&[
        Change::ServiceAdded(ServiceConfig::new(key).with_scheduler(SchedulerKind::Rr)),
        Change::DestAdded {
            service: key,
            dest: DestConfig::new(real.parse().unwrap(), fwd),
        },
    ])
    .expect("changes apply");
    p
}

/// The outer header of a tunnelled frame: (family's header length, protocol / next header).
fn outer(out: &[u8]) -> (usize, u8) {
    if out[12..14] == [0x86, 0xdd] {
        (40, out[20])
    } else {
        assert_eq!(checksum(&out[14..34]), 0, "the outer IPv4 header verifies");
        (20, out[23])
    }
}

/// The UDP checksum over the outer pseudo-header and the whole datagram: 0 when it verifies.
fn udp_sum(out: &[u8], l3: usize) -> u16 {
    let dgram = &out[14 + l3..];
    let mut pseudo = if l3 == 40 {
        let mut p = out[22..54].to_vec();
        p.extend_from_slice(&u32::try_from(dgram.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 17]);
        p
    } else {
        let mut p = out[26..34].to_vec();
        p.extend_from_slice(&[0, 17]);
        p.extend_from_slice(&u16::try_from(dgram.len()).unwrap().to_be_bytes());
        p
    };
    pseudo.extend_from_slice(dgram);
    checksum(&pseudo)
}

/// Sends `input` and checks the GUE encapsulation around it; returns the UDP checksum field.
fn check_gue(p: &mut XdpPlane, input: &[u8], real_last: u8) -> u16 {
    let (verdict, out) = run(p, input);
    assert_eq!(verdict, XDP_TX);
    let (l3, proto) = outer(&out);
    assert_eq!(proto, 17, "GUE rides on UDP");
    assert_eq!(out.len(), input.len() + l3 + 12);
    assert_eq!(out[5], real_last, "to the real server's MAC");
    assert_eq!(out[14 + l3 - 1], real_last, "to the real server's address");
    let udp = &out[14 + l3..14 + l3 + 8];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    assert!(
        (32768..61000).contains(&sport),
        "source port {sport} in the ephemeral range"
    );
    assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), GUE_PORT);
    assert_eq!(
        usize::from(u16::from_be_bytes([udp[4], udp[5]])),
        input.len() - 14 + 12
    );
    let gue = &out[14 + l3 + 8..14 + l3 + 12];
    let inner_proto = if l3 == 40 { 41 } else { 4 };
    assert_eq!(
        gue,
        &[0, inner_proto, 0, 0],
        "GUE version 0, the inner protocol"
    );
    assert_eq!(
        &out[14 + l3 + 12..],
        &input[14..],
        "the inner packet is intact"
    );
    u16::from_be_bytes([udp[6], udp[7]])
}

#[test]
fn gue_wraps_packets_in_udp_to_the_tunnel_port() {
    if !can_run() {
        return;
    }
    let gue = TunnelKind::Gue { port: GUE_PORT };
    // IPv4, no checksum (the kernel's default).
    let mut p = plane_with(
        Protocol::Tcp,
        "198.18.0.1:80",
        "198.18.1.3:80",
        tunnel(gue, TunnelCsum::NoCsum),
    );
    let input = frame(
        ip("198.18.9.9"),
        ip("198.18.0.1"),
        TCP,
        &tcp(4001, 80, 0x02),
    );
    assert_eq!(check_gue(&mut p, &input, 3), 0, "no UDP checksum");
    // Flows of other clients take other source ports (entropy for ECMP on the way).
    let ports: std::collections::HashSet<Vec<u8>> = (0..16)
        .map(|i| {
            run(
                &mut p,
                &frame(
                    ip("198.18.9.9"),
                    ip("198.18.0.1"),
                    TCP,
                    &tcp(5000 + i, 80, 0x02),
                ),
            )
            .1[34..36]
                .to_vec()
        })
        .collect();
    assert!(ports.len() > 8, "{ports:?}");
    // IPv4 and IPv6, TCP and UDP inside, with --tun-csum: the checksum verifies.
    for (proto, vip, real, client, l4, last) in [
        (
            Protocol::Tcp,
            "198.18.0.1:80",
            "198.18.1.4:80",
            "198.18.9.9",
            tcp(4002, 80, 0x02),
            4,
        ),
        (
            Protocol::Udp,
            "198.18.0.1:80",
            "198.18.1.4:80",
            "198.18.9.9",
            udp(4002, 80, b"a datagram, odd length"),
            4,
        ),
        (
            Protocol::Tcp,
            "[2001:db8::1]:80",
            "[2001:db8:1::5]:80",
            "2001:db8:9::9",
            tcp(4003, 80, 0x02),
            5,
        ),
        (
            Protocol::Udp,
            "[2001:db8::1]:80",
            "[2001:db8:1::5]:80",
            "2001:db8:9::9",
            udp(4003, 80, b"six!"),
            5,
        ),
    ] {
        let mut p = plane_with(proto, vip, real, tunnel(gue, TunnelCsum::Csum));
        let vip_ip = vip.parse::<SocketAddr>().unwrap().ip();
        let l4proto = if proto == Protocol::Tcp { TCP } else { UDP };
        let input = frame(ip(client), vip_ip, l4proto, &l4);
        assert_eq!(l4_sum(&input), 0, "the inner checksum is complete");
        let c = check_gue(&mut p, &input, last);
        assert_ne!(c, 0, "{proto:?} {vip}: a checksum is set");
        let (verdict, out) = run(&mut p, &input);
        assert_eq!(verdict, XDP_TX);
        let l3 = outer(&out).0;
        assert_eq!(
            udp_sum(&out, l3),
            0,
            "{proto:?} {vip}: the UDP checksum verifies"
        );
    }
    // SCTP inside: its sum is unknown without reading it all, so the checksum is left out.
    let mut p = plane_with(
        Protocol::Sctp,
        "198.18.0.1:3868",
        "198.18.1.6:3868",
        tunnel(gue, TunnelCsum::Csum),
    );
    let input = frame(
        ip("198.18.9.9"),
        ip("198.18.0.1"),
        SCTP,
        &sctp(5000, 3868, 1),
    );
    assert_eq!(check_gue(&mut p, &input, 6), 0);
}

#[test]
fn gre_wraps_packets_with_the_inner_ethertype_and_an_optional_checksum() {
    if !can_run() {
        return;
    }
    for (vip, real, client, ethertype) in [
        ("198.18.0.1:80", "198.18.1.7:80", "198.18.9.9", [0x08, 0x00]),
        (
            "[2001:db8::1]:80",
            "[2001:db8:1::7]:80",
            "2001:db8:9::9",
            [0x86, 0xdd],
        ),
    ] {
        let vip_ip = vip.parse::<SocketAddr>().unwrap().ip();
        let input = frame(ip(client), vip_ip, TCP, &tcp(4010, 80, 0x02));
        let mut p = plane_with(
            Protocol::Tcp,
            vip,
            real,
            tunnel(TunnelKind::Gre, TunnelCsum::NoCsum),
        );
        let (verdict, out) = run(&mut p, &input);
        assert_eq!(verdict, XDP_TX);
        let (l3, proto) = outer(&out);
        assert_eq!(proto, 47, "GRE");
        assert_eq!(
            &out[14 + l3..14 + l3 + 4],
            &[0, 0, ethertype[0], ethertype[1]]
        );
        assert_eq!(
            &out[14 + l3 + 4..],
            &input[14..],
            "the inner packet is intact"
        );

        let mut p = plane_with(
            Protocol::Tcp,
            vip,
            real,
            tunnel(TunnelKind::Gre, TunnelCsum::Csum),
        );
        let (verdict, out) = run(&mut p, &input);
        assert_eq!(verdict, XDP_TX);
        let (l3, _) = outer(&out);
        assert_eq!(&out[14 + l3..14 + l3 + 2], &[0x80, 0], "the checksum flag");
        assert_eq!(&out[14 + l3 + 2..14 + l3 + 4], &ethertype);
        assert_eq!(
            checksum(&out[14 + l3..]),
            0,
            "{vip}: the GRE checksum verifies"
        );
        assert_eq!(&out[14 + l3 + 8..], &input[14..]);
    }
}

#[test]
fn remote_checksum_offload_is_refused_with_its_reason() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
    p.apply(&[Change::ServiceAdded(ServiceConfig::new(key))])
        .unwrap();
    let e = p
        .apply(&[Change::DestAdded {
            service: key,
            dest: DestConfig::new(
                "198.18.1.9:80".parse().unwrap(),
                tunnel(TunnelKind::Gue { port: GUE_PORT }, TunnelCsum::RemCsum),
            ),
        }])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--tun-remcsum"), "{e}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
