//! The XDP program run on crafted packets with BPF_PROG_TEST_RUN, after the plane wrote its maps
//! from real `Change`s. Needs root (loading BPF); skipped with a message otherwise.

use rvs_core::{
    Change, DataPlane, DestConfig, ForwardMethod, PersistMask, Persistence, SchedFlags,
    SchedulerKind, ServiceConfig, ServiceKey, Tunnel,
};
use rvs_xdp::XdpPlane;
use std::net::{Ipv4Addr, SocketAddr};

mod common;

use common::*;

fn vip() -> ServiceKey {
    ServiceKey::tcp("198.18.0.1:80".parse().unwrap())
}

fn add(plane: &mut XdpPlane, dests: &[(&str, ForwardMethod, u32)]) {
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Rr),
    )];
    for (addr, fwd, w) in dests {
        let dest = DestConfig::new(addr.parse().unwrap(), *fwd).with_weight(*w);
        changes.push(Change::DestAdded {
            service: vip(),
            dest,
        });
    }
    plane.apply(&changes).expect("changes apply");
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + TCP SYN frame from `client` to `dst`.
fn syn(client: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(c), SocketAddr::V4(d)) = (client, dst) else {
        panic!("v4 only")
    };
    let mut p = Vec::new();
    p.extend_from_slice(&DIRECTOR_MAC);
    p.extend_from_slice(&CLIENT_MAC);
    p.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&c.ip().octets());
    ip.extend_from_slice(&d.ip().octets());
    let ck = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(&c.port().to_be_bytes());
    p.extend_from_slice(&d.port().to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    p
}

fn client(port: u16) -> SocketAddr {
    SocketAddr::from(([198, 18, 9, 9], port))
}

#[test]
fn traffic_for_no_service_passes_to_the_kernel() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(&mut p, &[("198.18.1.2:80", ForwardMethod::Route, 1)]);
    let (verdict, _) = run(&mut p, &syn(client(4000), "198.18.0.1:81".parse().unwrap()));
    assert_eq!(verdict, XDP_PASS);
    let (verdict, _) = run(&mut p, &syn(client(4000), "198.18.0.2:80".parse().unwrap()));
    assert_eq!(verdict, XDP_PASS);
}

#[test]
fn direct_routing_changes_only_the_macs() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(&mut p, &[("198.18.1.2:80", ForwardMethod::Route, 1)]);
    let input = syn(client(4000), "198.18.0.1:80".parse().unwrap());
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 2], "to the real server's MAC");
    assert_eq!(&out[6..12], &DIRECTOR_MAC, "from the director's MAC");
    assert_eq!(
        &out[12..],
        &input[12..],
        "IP and TCP untouched (the real server holds the VIP)"
    );
    let stats = p.stats().expect("the plane reads its counters");
    assert_eq!(stats[0].dests[0].counters.in_pkts, 1);
    assert_eq!(stats[0].dests[0].counters.conns, 1);
}

#[test]
fn tunnelling_wraps_the_packet_in_an_outer_ipv4_header() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(
        &mut p,
        &[("198.18.1.3:80", ForwardMethod::Tunnel(Tunnel::IPIP), 1)],
    );
    let input = syn(client(4001), "198.18.0.1:80".parse().unwrap());
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), input.len() + 20);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 3]);
    let outer = &out[14..34];
    assert_eq!(outer[0], 0x45);
    assert_eq!(
        u16::from_be_bytes([outer[2], outer[3]]),
        60,
        "outer length covers the inner packet"
    );
    assert_eq!(outer[9], 4, "IP-in-IP");
    assert_eq!(&outer[12..16], &[198, 18, 0, 254], "from the director");
    assert_eq!(&outer[16..20], &[198, 18, 1, 3], "to the real server");
    assert_eq!(ipv4_checksum(outer), 0, "the outer checksum verifies");
    assert_eq!(&out[34..], &input[14..], "the inner packet is intact");
}

#[test]
fn flows_spread_over_dests_stick_to_theirs_and_leave_quiesced_ones_alone() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(
        &mut p,
        &[
            ("198.18.1.2:80", ForwardMethod::Route, 1),
            ("198.18.1.3:80", ForwardMethod::Route, 1),
        ],
    );
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    let dest_of = |p: &mut XdpPlane, port| run(p, &syn(client(port), to)).1[5];
    let first: Vec<u8> = (40000..40064).map(|port| dest_of(&mut p, port)).collect();
    assert!(
        first.contains(&2) && first.contains(&3),
        "64 flows reach both real servers"
    );
    let again: Vec<u8> = (40000..40064).map(|port| dest_of(&mut p, port)).collect();
    assert_eq!(first, again, "a flow stays on its real server");
    // Quiesce .2: its flows go on, new flows avoid it.
    let dest =
        DestConfig::new("198.18.1.2:80".parse().unwrap(), ForwardMethod::Route).with_weight(0);
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest,
    }])
    .unwrap();
    let after: Vec<u8> = (40000..40064).map(|port| dest_of(&mut p, port)).collect();
    assert_eq!(first, after, "open flows keep their real server");
    let fresh: Vec<u8> = (50000..50064).map(|port| dest_of(&mut p, port)).collect();
    assert!(
        fresh.iter().all(|&d| d == 3),
        "new flows avoid the quiesced real server"
    );
}

/// For sh and mh (plain, with -fallback, with -port) and dh over dests with a quiesced one, every
/// new flow goes where the core's scheduler sends the same flow, or is dropped where the
/// kernel finds no dest.
#[test]
fn sh_dh_and_mh_send_each_flow_where_the_core_does() {
    use rand::SeedableRng;
    if !can_run() {
        return;
    }
    let cases = [
        (SchedulerKind::Sh, 0),
        (SchedulerKind::Sh, SchedFlags::SCHED1),
        (SchedulerKind::Sh, SchedFlags::SCHED2),
        (SchedulerKind::Dh, 0),
        (SchedulerKind::Mh, 0),
        (SchedulerKind::Mh, SchedFlags::SCHED1),
        (SchedulerKind::Mh, SchedFlags::SCHED2),
    ];
    for (scheduler, flags) in cases {
        let mut p = plane();
        let mut core = rvs_core::Table::new();
        let mut changes = Vec::new();
        // dh hashes the destination address, so give it several VIPs to spread over.
        let vip_addrs: Vec<SocketAddr> = (1..=8u8)
            .map(|i| SocketAddr::from(([198, 18, 0, i], 80)))
            .collect();
        let vips: Vec<ServiceKey> = vip_addrs.iter().map(|a| ServiceKey::tcp(*a)).collect();
        for vip in &vips {
            let mut config = ServiceConfig::new(*vip).with_scheduler(scheduler);
            config.sched_flags = SchedFlags(flags);
            changes.push(Change::ServiceAdded(config));
            for (last, weight) in [(2u8, 3u32), (3, 2), (4, 1), (5, 2)] {
                let addr = SocketAddr::from(([198, 18, 1, last], 80));
                let dest = DestConfig::new(addr, ForwardMethod::Route).with_weight(weight);
                changes.push(Change::DestAdded {
                    service: *vip,
                    dest,
                });
            }
            // Quiesced after it had weight: mh keeps its slots (last_weight), so flows that
            // hash there need mh-fallback.
            let quiesced = SocketAddr::from(([198, 18, 1, 3], 80));
            changes.push(Change::DestEdited {
                service: *vip,
                dest: DestConfig::new(quiesced, ForwardMethod::Route).with_weight(0),
            });
        }
        p.apply(&changes).unwrap();
        for c in &changes {
            core.apply_change(c).unwrap();
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let (mut dropped, mut forwarded) = (0, 0);
        for i in 0..400u32 {
            let from = SocketAddr::from((
                Ipv4Addr::from(0xC612_0000u32 | (i.wrapping_mul(2_654_435_761) & 0x1_FFFF)),
                1024 + i as u16,
            ));
            let vip = vips[i as usize % vips.len()];
            let flow = rvs_core::Flow {
                client: from,
                local: vip_addrs[i as usize % vips.len()],
            };
            let expected = core
                .service_mut(&vip)
                .unwrap()
                .schedule(&flow, true, rvs_core::Timestamp::ZERO, &mut rng)
                .ok()
                .map(|t| t.dest);
            let (verdict, out) = run(&mut p, &syn(from, flow.local));
            match expected {
                Some(SocketAddr::V4(d)) => {
                    assert_eq!(verdict, XDP_TX, "{scheduler:?} {flags:#x} {from} to {vip}");
                    assert_eq!(
                        out[5],
                        d.ip().octets()[3],
                        "{scheduler:?} {flags:#x} {from} to {vip}"
                    );
                    forwarded += 1;
                }
                _ => {
                    assert_eq!(
                        verdict, XDP_DROP,
                        "{scheduler:?} {flags:#x} {from} to {vip}: no dest"
                    );
                    dropped += 1;
                }
            }
        }
        assert!(forwarded > 0, "{scheduler:?} {flags:#x} forwards");
        if flags == SchedFlags::SCHED1 {
            assert_eq!(dropped, 0, "sh-fallback always finds a dest");
        }
    }
}

/// Persistence: a client network sticks to its dest across connections, through quiescing,
/// not past the dest's removal nor past the timeout; `-Lc` lists the template.
#[test]
fn persistent_clients_stick_to_their_dest_until_it_leaves_or_the_template_expires() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let persistent = |timeout| {
        let mut config = ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Rr);
        config.persistence = Some(Persistence {
            timeout,
            netmask: PersistMask::V4("255.255.255.0".parse().unwrap()),
        });
        config
    };
    let dest = |last: u8, weight| {
        DestConfig::new(
            SocketAddr::from(([198, 18, 1, last], 80)),
            ForwardMethod::Route,
        )
        .with_weight(weight)
    };
    p.apply(&[
        Change::ServiceAdded(persistent(300)),
        Change::DestAdded {
            service: vip(),
            dest: dest(2, 1),
        },
        Change::DestAdded {
            service: vip(),
            dest: dest(3, 1),
        },
    ])
    .unwrap();
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    let dest_of = |p: &mut XdpPlane, from: &str| {
        let (verdict, out) = run(p, &syn(from.parse().unwrap(), to));
        assert_eq!(verdict, XDP_TX, "{from} is forwarded");
        out[5]
    };
    let held = dest_of(&mut p, "198.18.9.9:40000");
    for port in 40001..40009 {
        assert_eq!(dest_of(&mut p, &format!("198.18.9.9:{port}")), held);
    }
    assert_eq!(
        dest_of(&mut p, "198.18.9.77:5000"),
        held,
        "same /24, same dest"
    );
    let other = dest_of(&mut p, "198.18.10.9:5000");
    assert_ne!(other, held, "another network is scheduled (rr)");
    let listed = p.connections().expect("the plane reads its connections");
    assert!(
        listed
            .iter()
            .any(|c| c.client == "198.18.9.0:0".parse().unwrap()
                && c.state == rvs_core::ConnState::None
                && c.dest == SocketAddr::from(([198, 18, 1, held], 80))
                && c.expires_secs > 290),
        "-Lc lists the template: {listed:?}"
    );
    // Quiesced: the template still holds, as in IPVS.
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest: dest(held, 0),
    }])
    .unwrap();
    assert_eq!(dest_of(&mut p, "198.18.9.9:41000"), held);
    // Removed: the template lapses and the client network is scheduled anew.
    p.apply(&[Change::DestRemoved {
        service: vip(),
        dest: SocketAddr::from(([198, 18, 1, held], 80)),
    }])
    .unwrap();
    assert_eq!(dest_of(&mut p, "198.18.9.9:41001"), other);
    // Expired: with a 1 s timeout and 2 s of silence, 198.18.10.0/24 is no longer held by
    // `other` (now quiesced), so it goes to the re-added dest.
    p.apply(&[
        Change::ServiceEdited(persistent(1)),
        Change::DestAdded {
            service: vip(),
            dest: dest(held, 1),
        },
    ])
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2200));
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest: dest(other, 0),
    }])
    .unwrap();
    assert_eq!(dest_of(&mut p, "198.18.10.9:6000"), held);
}

#[test]
fn a_service_without_available_dests_drops_new_flows() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(&mut p, &[("198.18.1.2:80", ForwardMethod::Route, 0)]);
    let (verdict, _) = run(&mut p, &syn(client(4002), "198.18.0.1:80".parse().unwrap()));
    assert_eq!(verdict, XDP_DROP);
}

#[test]
fn what_the_plane_cannot_do_is_refused_with_its_reason() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(&mut p, &[]);

    let e = p
        .check(&[Change::ServiceAdded(ServiceConfig::new(
            ServiceKey::FwMark {
                mark: 7,
                family: rvs_core::Family::Inet,
            },
        ))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("FWM 7"), "{e}");
    // A ring holds 256 dests: the 257th is refused, and nothing of the batch is applied.
    let many: Vec<Change> = (0..257u32)
        .map(|i| Change::DestAdded {
            service: vip(),
            dest: DestConfig::new(
                SocketAddr::from(([198, 18, 2 + (i / 250) as u8, (i % 250) as u8 + 1], 80)),
                ForwardMethod::Route,
            ),
        })
        .collect();
    let e = p.apply(&many).unwrap_err().to_string();
    assert!(e.contains("more than 256 real servers"), "{e}");
    assert!(p.apply(&many[..256]).is_ok());
}

/// The checksum over the IPv4 pseudo-header and the TCP segment of an Ethernet frame.
fn tcp_sum(frame: &[u8]) -> u16 {
    let seg = &frame[34..];
    let mut pseudo = frame[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&u16::try_from(seg.len()).unwrap().to_be_bytes());
    pseudo.extend_from_slice(seg);
    checksum(&pseudo)
}

/// Whether the TCP checksum of an Ethernet + IPv4 + TCP frame verifies.
fn tcp_checksum_ok(frame: &[u8]) -> bool {
    tcp_sum(frame) == 0
}

/// Fills in a valid TCP checksum.
fn with_tcp_checksum(mut frame: Vec<u8>) -> Vec<u8> {
    frame[50..52].fill(0);
    let c = tcp_sum(&frame);
    frame[50..52].copy_from_slice(&c.to_be_bytes());
    frame
}

#[test]
fn nat_rewrites_both_ways_with_valid_checksums() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(&mut p, &[("198.18.1.4:8080", ForwardMethod::Masq, 1)]);
    // Client -> VIP becomes client -> real server.
    let input = with_tcp_checksum(syn(client(4100), "198.18.0.1:80".parse().unwrap()));
    assert!(tcp_checksum_ok(&input));
    let (verdict, out) = run(&mut p, &input);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 1, 4]);
    assert_eq!(
        &out[30..34],
        &[198, 18, 1, 4],
        "destination is the real server"
    );
    assert_eq!(u16::from_be_bytes([out[36], out[37]]), 8080, "and its port");
    assert_eq!(
        &out[26..30],
        &[198, 18, 9, 9],
        "the client's address is kept"
    );
    assert_eq!(checksum(&out[14..34]), 0, "the IP checksum verifies");
    assert!(tcp_checksum_ok(&out), "the TCP checksum verifies");
    // Real server -> client becomes VIP -> client, sent back to the client's MAC.
    let mut reply = with_tcp_checksum(syn("198.18.1.4:8080".parse().unwrap(), client(4100)));
    reply[6..12].copy_from_slice(&[2, 0, 0, 0, 1, 4]);
    let reply = with_tcp_checksum(reply);
    let (verdict, back) = run(&mut p, &reply);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(&back[0..6], &CLIENT_MAC, "to the client");
    assert_eq!(&back[6..12], &DIRECTOR_MAC);
    assert_eq!(&back[26..30], &[198, 18, 0, 1], "from the VIP");
    assert_eq!(
        u16::from_be_bytes([back[34], back[35]]),
        80,
        "and the virtual port"
    );
    assert_eq!(checksum(&back[14..34]), 0);
    assert!(tcp_checksum_ok(&back));
    // A packet from the real server that belongs to no connection is left to the kernel.
    let stray = with_tcp_checksum(syn("198.18.1.4:8080".parse().unwrap(), client(4999)));
    assert_eq!(run(&mut p, &stray).0, XDP_PASS);
}

#[test]
fn new_flows_follow_the_kernels_wrr_sequence() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    // Added oldest first, so the kernel's list order is .2 (4), .3 (3), .4 (2).
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Wrr),
    )];
    for (addr, w) in [
        ("198.18.1.4:80", 2),
        ("198.18.1.3:80", 3),
        ("198.18.1.2:80", 4),
    ] {
        let dest = DestConfig::new(addr.parse().unwrap(), ForwardMethod::Route).with_weight(w);
        changes.push(Change::DestAdded {
            service: vip(),
            dest,
        });
    }
    p.apply(&changes).unwrap();
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    let picks: Vec<u8> = (41000..41018)
        .map(|port| run(&mut p, &syn(client(port), to)).1[5])
        .collect();
    // cw carries over the adds (it is 1 after the first), so the first pass is at weight 1.
    assert_eq!(
        picks,
        [2, 3, 4, 2, 2, 3, 2, 3, 4, 2, 3, 4, 2, 2, 3, 2, 3, 4]
    );
}

/// The same frame with other TCP flags.
fn with_flags(mut frame: Vec<u8>, flags: u8) -> Vec<u8> {
    frame[47] = flags;
    frame
}

#[test]
fn tcp_flags_drive_the_connection_state_and_idle_flows_expire() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    add(
        &mut p,
        &[
            ("198.18.1.2:80", ForwardMethod::Route, 1),
            ("198.18.1.3:80", ForwardMethod::Route, 1),
        ],
    );
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    let state = |p: &XdpPlane| {
        let c = p.connections().expect("the plane reads its connections");
        assert_eq!(c.len(), 1, "{c:?}");
        (c[0].state, c[0].expires_secs)
    };
    let syn_frame = syn(client(42000), to);
    let (_, out) = run(&mut p, &syn_frame);
    let first = out[5];
    assert_eq!(state(&p).0, rvs_core::ConnState::SynRecv);
    run(&mut p, &with_flags(syn_frame.clone(), 0x10));
    let (st, expires) = state(&p);
    assert_eq!(st, rvs_core::ConnState::Established);
    assert!(
        expires > 850 && expires <= 900,
        "the tcp timeout: {expires}"
    );
    let stats = p.stats().expect("the plane reads its counters");
    let active: u32 = stats[0].dests.iter().map(|d| d.conns.active).sum();
    assert_eq!(active, 1, "an established flow counts as active");
    run(&mut p, &with_flags(syn_frame.clone(), 0x11));
    assert_eq!(state(&p).0, rvs_core::ConnState::FinWait);
    // With a 1 s timeout in FIN_WAIT, an idle flow expires and its next packet is scheduled anew.
    p.apply(&[Change::TimeoutsSet(rvs_core::Timeouts {
        tcp: 900,
        tcp_fin: 1,
        udp: 300,
    })])
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(
        p.connections()
            .expect("the plane reads its connections")
            .is_empty(),
        "expired flows are not listed"
    );
    let (_, again) = run(&mut p, &with_flags(syn_frame, 0x10));
    assert_ne!(
        again[5], first,
        "rr gives the new flow the next real server"
    );
}

/// lc, wlc, sed, nq, ovf, fo, lblc and lblcr: through a seeded mix of new flows, handshakes completing and flows
/// closing, every new flow goes to the dest the core's scheduler picks under the same counts
/// (SYN_RECV and FIN_WAIT inactive, ESTABLISHED active); a quiesced dest gets none.
#[test]
fn connection_counting_schedulers_pick_as_the_core_does() {
    use rand::{Rng, SeedableRng};
    if !can_run() {
        return;
    }
    for scheduler in [
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Ovf,
        SchedulerKind::Fo,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
    ] {
        let mut p = plane();
        let mut core = rvs_core::Table::new();
        let mut changes = vec![Change::ServiceAdded(
            ServiceConfig::new(vip()).with_scheduler(scheduler),
        )];
        for (last, weight) in [(2u8, 3u32), (3, 1), (4, 2), (5, 0)] {
            let addr = SocketAddr::from(([198, 18, 1, last], 80));
            let dest = DestConfig::new(addr, ForwardMethod::Route).with_weight(weight);
            changes.push(Change::DestAdded {
                service: vip(),
                dest,
            });
        }
        p.apply(&changes).unwrap();
        for c in &changes {
            core.apply_change(c).unwrap();
        }
        let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        // Open flows: client, the core's ticket, established yet.
        let mut open: Vec<(SocketAddr, rvs_core::ConnTicket, bool)> = Vec::new();
        let mut port = 42_000u16;
        for step in 0..160 {
            let roll: u32 = rng.random_range(0..10);
            let pending = open.iter().position(|f| !f.2);
            let established = open.iter().position(|f| f.2);
            match (roll, pending, established) {
                (5..=7, Some(i), _) => {
                    let (client, ticket, up) = &mut open[i];
                    let (verdict, _) = run(&mut p, &with_flags(syn(*client, to), 0x10));
                    assert_eq!(verdict, XDP_TX);
                    core.service_mut(&vip()).unwrap().set_active(ticket, true);
                    *up = true;
                }
                (8..=9, _, Some(i)) => {
                    let (client, mut ticket, _) = open.swap_remove(i);
                    let (verdict, _) = run(&mut p, &with_flags(syn(client, to), 0x11));
                    assert_eq!(verdict, XDP_TX);
                    // FIN_WAIT: still counted, as inactive.
                    core.service_mut(&vip())
                        .unwrap()
                        .set_active(&mut ticket, false);
                }
                _ => {
                    port += 1;
                    let client = SocketAddr::from(([198, 18, 9, 9], port));
                    let flow = rvs_core::Flow { client, local: to };
                    let picked = core.service_mut(&vip()).unwrap().schedule(
                        &flow,
                        false,
                        rvs_core::Timestamp::ZERO,
                        &mut rng,
                    );
                    let (verdict, out) = run(&mut p, &syn(client, to));
                    let Ok(ticket) = picked else {
                        // ovf: every dest is full.
                        assert_eq!(verdict, XDP_DROP, "{scheduler:?} step {step}: no dest");
                        continue;
                    };
                    let SocketAddr::V4(expected) = ticket.dest else {
                        unreachable!()
                    };
                    assert_eq!(verdict, XDP_TX);
                    assert_eq!(
                        out[5],
                        expected.ip().octets()[3],
                        "{scheduler:?} step {step}: new flow from {client}"
                    );
                    assert_ne!(out[5], 5, "the quiesced dest gets no new flow");
                    open.push((client, ticket, false));
                }
            }
        }
        // A sweep recounts from the connection table and changes nothing.
        let swept = p.sweeper().unwrap().sweep().unwrap();
        assert_eq!(swept.expired, 0);
        port += 1;
        let client = SocketAddr::from(([198, 18, 9, 9], port));
        let flow = rvs_core::Flow { client, local: to };
        let expected = core
            .service_mut(&vip())
            .unwrap()
            .schedule(&flow, false, rvs_core::Timestamp::ZERO, &mut rng)
            .ok()
            .map(|t| t.dest);
        let (verdict, out) = run(&mut p, &syn(client, to));
        assert_eq!(
            (verdict, (verdict == XDP_TX).then_some(out[5])),
            match expected {
                Some(SocketAddr::V4(a)) => (XDP_TX, Some(a.ip().octets()[3])),
                _ => (XDP_DROP, None),
            },
            "{scheduler:?} after a sweep"
        );
    }
}

/// The sweeper deletes idle flows the program never saw again and zeroes their counts, so lc
/// sees the real servers as idle again.
#[test]
fn the_sweeper_expires_idle_flows_and_corrects_the_counts() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Lc),
    )];
    for last in [2u8, 3] {
        let dest = DestConfig::new(
            SocketAddr::from(([198, 18, 1, last], 80)),
            ForwardMethod::Route,
        );
        changes.push(Change::DestAdded {
            service: vip(),
            dest,
        });
    }
    changes.push(Change::TimeoutsSet(rvs_core::Timeouts {
        tcp: 1,
        tcp_fin: 1,
        udp: 1,
    }));
    p.apply(&changes).unwrap();
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    // Three established flows: lc spreads them 2 + 1 (list order: .3 first, then .2).
    let mut picks = Vec::new();
    for port in 43_000..43_003u16 {
        picks.push(run(&mut p, &syn(client(port), to)).1[5]);
        run(&mut p, &with_flags(syn(client(port), to), 0x10));
    }
    assert_eq!(picks, [3, 2, 3]);
    // .3 has two active, .2 one; without a sweep the next new flow would go to .2.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let swept = p.sweeper().unwrap().sweep().unwrap();
    assert_eq!(swept.expired, 3, "{swept:?}");
    assert_eq!(swept.live, 0);
    // All idle again: lc takes the first dest in list order, then the other.
    assert_eq!(run(&mut p, &syn(client(43_200), to)).1[5], 3);
    assert_eq!(run(&mut p, &syn(client(43_201), to)).1[5], 2);
}

/// Thresholds (-x, -y): a dest that reaches its upper threshold gets no new flows (lc and wlc
/// pick as the core does, rr skips it); once its flows expire and a sweep recounts, it is
/// back.
#[test]
fn overloaded_real_servers_get_no_new_flows_until_their_connections_drop() {
    use rand::SeedableRng;
    if !can_run() {
        return;
    }
    for scheduler in [SchedulerKind::Lc, SchedulerKind::Wlc, SchedulerKind::Rr] {
        let mut p = plane();
        let mut core = rvs_core::Table::new();
        let mut changes = vec![Change::ServiceAdded(
            ServiceConfig::new(vip()).with_scheduler(scheduler),
        )];
        for (last, upper, lower) in [(2u8, 2u32, 0u32), (3, 3, 1), (4, 0, 0)] {
            let mut dest = DestConfig::new(
                SocketAddr::from(([198, 18, 1, last], 80)),
                ForwardMethod::Route,
            );
            dest.u_threshold = upper;
            dest.l_threshold = lower;
            changes.push(Change::DestAdded {
                service: vip(),
                dest,
            });
        }
        changes.push(Change::TimeoutsSet(rvs_core::Timeouts {
            tcp: 1,
            tcp_fin: 1,
            udp: 1,
        }));
        p.apply(&changes).unwrap();
        for c in &changes {
            core.apply_change(c).unwrap();
        }
        let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut per_dest = std::collections::HashMap::<u8, u32>::new();
        for port in 44_000..44_012u16 {
            let flow = rvs_core::Flow {
                client: client(port),
                local: to,
            };
            let mut ticket = core
                .service_mut(&vip())
                .unwrap()
                .schedule(&flow, false, rvs_core::Timestamp::ZERO, &mut rng)
                .unwrap();
            let got = run(&mut p, &syn(client(port), to)).1[5];
            run(&mut p, &with_flags(syn(client(port), to), 0x10));
            core.service_mut(&vip())
                .unwrap()
                .set_active(&mut ticket, true);
            if scheduler != SchedulerKind::Rr {
                let SocketAddr::V4(expected) = ticket.dest else {
                    unreachable!()
                };
                assert_eq!(got, expected.ip().octets()[3], "{scheduler:?} port {port}");
            }
            *per_dest.entry(got).or_default() += 1;
        }
        assert_eq!(
            per_dest.get(&2),
            Some(&2),
            "{scheduler:?}: .2 stops at -x 2"
        );
        assert_eq!(
            per_dest.get(&3),
            Some(&3),
            "{scheduler:?}: .3 stops at -x 3"
        );
        assert_eq!(per_dest.get(&4), Some(&7), "{scheduler:?}: the rest to .4");
        // All flows idle out; the sweep recounts and clears the overload flags.
        std::thread::sleep(std::time::Duration::from_millis(2200));
        let swept = p.sweeper().unwrap().sweep().unwrap();
        assert_eq!(swept.expired, 12, "{swept:?}");
        let again: std::collections::HashSet<u8> = (44_100..44_103u16)
            .map(|port| run(&mut p, &syn(client(port), to)).1[5])
            .collect();
        assert_eq!(
            again.len(),
            3,
            "{scheduler:?}: every real server takes flows again"
        );
    }
}

/// twos draws at random, so it is checked by what it must do: .2 (weight 1) loaded by ten
/// established flows, .3 (weight 8) idle; a draw lands on .2 with probability 2/10 (the
/// kernel draws in 0..=total), so without comparing loads .2 would get about 80 of 400 new
/// flows, with the comparison only those where both draws land on it, about 16 (the bound of
/// 50 is 3.7 standard deviations below the first and 8 above the second). A quiesced real
/// server gets none.
#[test]
fn twos_sends_most_new_flows_to_the_less_loaded_real_server() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Twos),
    )];
    // Added last, .2 comes first in the kernel's list order, where the draws start.
    for (last, weight) in [(4u8, 0u32), (3, 8), (2, 1)] {
        let dest = DestConfig::new(
            SocketAddr::from(([198, 18, 1, last], 80)),
            ForwardMethod::Route,
        )
        .with_weight(weight);
        changes.push(Change::DestAdded {
            service: vip(),
            dest,
        });
    }
    p.apply(&changes).unwrap();
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    // Load .2 with ten established flows (placed while .3 is quiesced).
    let quiesce = |p: &mut XdpPlane, last: u8, weight: u32| {
        let dest = DestConfig::new(
            SocketAddr::from(([198, 18, 1, last], 80)),
            ForwardMethod::Route,
        )
        .with_weight(weight);
        p.apply(&[Change::DestEdited {
            service: vip(),
            dest,
        }])
        .unwrap();
    };
    quiesce(&mut p, 3, 0);
    for port in 45_000..45_010u16 {
        assert_eq!(run(&mut p, &syn(client(port), to)).1[5], 2);
        run(&mut p, &with_flags(syn(client(port), to), 0x10));
    }
    quiesce(&mut p, 3, 8);
    let mut shares = std::collections::HashMap::<u8, u32>::new();
    for port in 45_100..45_500u16 {
        *shares
            .entry(run(&mut p, &syn(client(port), to)).1[5])
            .or_default() += 1;
    }
    let loaded = shares.get(&2).copied().unwrap_or(0);
    assert!(
        loaded < 50,
        "the loaded real server got {loaded} of 400: {shares:?}"
    );
    assert!(
        !shares.contains_key(&4),
        "the quiesced one gets none: {shares:?}"
    );
}

#[test]
fn the_connection_tables_take_their_size_at_load() {
    if !can_run() {
        return;
    }
    let director = rvs_xdp::DirectorAddr {
        tunnel_src: "198.18.0.1".parse().unwrap(),
        tunnel_src6: None,
    };
    let p = rvs_xdp::XdpPlane::load_sized(director, Box::new(common::FakeNeighbors), 4096)
        .expect("the program loads");
    for map in rvs_xdp::plane::CONN_TABLES {
        assert_eq!(p.map_capacity(map), Some(4096), "{map}");
    }
    assert_eq!(
        p.map_capacity("rvs_dests"),
        Some(rvs_bpf_abi::MAX_DESTS),
        "the other maps keep their compiled size"
    );
}

#[test]
fn every_verdict_is_counted_in_its_slot() {
    if !can_run() {
        return;
    }
    let count = |p: &XdpPlane, name: &str| {
        p.counters()
            .expect("the plane reads its counters")
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
            .unwrap_or_else(|| panic!("no counter {name}"))
    };
    let mut p = plane();
    add(&mut p, &[("198.18.1.2:80", ForwardMethod::Route, 1)]);
    // Not for a service (another port), then a flow forwarded by direct routing (its SYN and
    // a second packet of it).
    run(&mut p, &syn(client(4000), "198.18.0.1:81".parse().unwrap()));
    let to: SocketAddr = "198.18.0.1:80".parse().unwrap();
    run(&mut p, &syn(client(4001), to));
    run(&mut p, &syn(client(4001), to));
    assert_eq!(count(&p, "passed"), 1);
    assert_eq!(count(&p, "forwarded"), 2);
    // The only dest quiesced: a new flow finds no dest.
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest: DestConfig::new("198.18.1.2:80".parse().unwrap(), ForwardMethod::Route)
            .with_weight(0),
    }])
    .unwrap();
    let (verdict, _) = run(&mut p, &syn(client(4002), to));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(count(&p, "dropped_no_dest"), 1);
    assert_eq!(count(&p, "forwarded"), 2, "nothing else moved");
    let names: Vec<String> = p.counters().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names.len(),
        rvs_bpf_abi::verdict::COUNT as usize,
        "{names:?}"
    );
}

#[test]
fn a_weight_change_on_an_mh_service_writes_only_the_slots_that_moved() {
    if !can_run() {
        return;
    }
    let mut p = plane();
    let mh = ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Mh);
    let dests: Vec<SocketAddr> = (2..=5)
        .map(|i| SocketAddr::from(([198, 18, 1, i], 80)))
        .collect();
    let mut changes = vec![Change::ServiceAdded(mh)];
    for d in &dests {
        changes.push(Change::DestAdded {
            service: vip(),
            dest: DestConfig::new(*d, ForwardMethod::Route),
        });
    }
    p.apply(&changes).unwrap();
    let first = p.slot_writes();
    assert!(
        first >= u64::from(rvs_bpf_abi::MH_SIZE),
        "the first table is written whole"
    );
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest: DestConfig::new(dests[0], ForwardMethod::Route).with_weight(2),
    }])
    .unwrap();
    let edit = p.slot_writes() - first;
    eprintln!("an mh weight edit wrote {edit} slots; the first table {first}");
    assert!(
        edit > 0 && edit < u64::from(rvs_bpf_abi::MH_SIZE) / 2,
        "a weight change moves some slots, not all: {edit} written"
    );
    // An edit that changes nothing the program sees writes no slot.
    let before = p.slot_writes();
    p.apply(&[Change::DestEdited {
        service: vip(),
        dest: DestConfig::new(dests[0], ForwardMethod::Route).with_weight(2),
    }])
    .unwrap();
    assert_eq!(p.slot_writes(), before);
}
