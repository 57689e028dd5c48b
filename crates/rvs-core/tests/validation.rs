//! Every refusal of `Table::apply`, each checked to leave the table exactly as it was.

use rvs_core::config::{MAX_TIMEOUT, MAX_WEIGHT};
use rvs_core::{
    Command, DestConfig, ErrnoClass, Family, ForwardMethod, PersistMask, Persistence, SchedFlags,
    SchedulerKind, ServiceConfig, ServiceKey, Table, TableError, Timeouts, Tunnel, TunnelCsum,
    TunnelKind,
};
use std::net::{Ipv4Addr, SocketAddr};

fn vip() -> ServiceKey {
    ServiceKey::tcp("198.18.0.1:80".parse().unwrap())
}

fn vip6() -> ServiceKey {
    ServiceKey::tcp("[2001:db8::1]:80".parse().unwrap())
}

fn rip(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn masq(addr: &str) -> DestConfig {
    DestConfig::new(rip(addr), ForwardMethod::Masq)
}

/// A table with one TCP service (v4 and v6) and one dest each.
fn table() -> Table {
    let mut t = Table::new();
    t.apply(Command::batch(vec![
        Command::AddService(ServiceConfig::new(vip())),
        Command::AddDest {
            service: vip(),
            dest: masq("198.18.1.1:8080"),
        },
        Command::AddService(ServiceConfig::new(vip6())),
        Command::AddDest {
            service: vip6(),
            dest: masq("[2001:db8::10]:80"),
        },
    ]))
    .unwrap();
    t
}

/// Applies `command`, expects `expected`, and checks nothing changed.
fn refused(command: Command, expected: &TableError) {
    let mut t = table();
    let before = t.config();
    let err = t.apply(command).unwrap_err();
    assert_eq!(&err, expected);
    assert_eq!(t.config(), before, "a refused command changed the table");
}

fn persistent(key: ServiceKey, timeout: u32, netmask: PersistMask) -> ServiceConfig {
    ServiceConfig {
        persistence: Some(Persistence { timeout, netmask }),
        ..ServiceConfig::new(key)
    }
}

#[test]
fn adding_an_existing_service_is_refused() {
    refused(
        Command::AddService(ServiceConfig::new(vip())),
        &TableError::ServiceExists { service: vip() },
    );
}

#[test]
fn operations_on_a_missing_service_are_refused() {
    let ghost = ServiceKey::udp("198.18.0.9:53".parse().unwrap());
    let e = TableError::ServiceNotFound { service: ghost };
    refused(Command::EditService(ServiceConfig::new(ghost)), &e);
    refused(Command::DelService { service: ghost }, &e);
    refused(
        Command::AddDest {
            service: ghost,
            dest: masq("198.18.1.1:53"),
        },
        &e,
    );
    refused(
        Command::EditDest {
            service: ghost,
            dest: masq("198.18.1.1:53"),
        },
        &e,
    );
    refused(
        Command::DelDest {
            service: ghost,
            dest: rip("198.18.1.1:53"),
        },
        &e,
    );
    refused(
        Command::Zero {
            service: Some(ghost),
        },
        &e,
    );
    assert_eq!(e.errno_class(), ErrnoClass::NoService);
}

#[test]
fn adding_an_existing_dest_is_refused() {
    refused(
        Command::AddDest {
            service: vip(),
            dest: masq("198.18.1.1:8080").with_weight(5),
        },
        &TableError::DestExists {
            service: vip(),
            dest: rip("198.18.1.1:8080"),
        },
    );
}

#[test]
fn editing_or_deleting_a_missing_dest_is_refused() {
    let e = TableError::DestNotFound {
        service: vip(),
        dest: rip("198.18.1.2:8080"),
    };
    refused(
        Command::EditDest {
            service: vip(),
            dest: masq("198.18.1.2:8080"),
        },
        &e,
    );
    refused(
        Command::DelDest {
            service: vip(),
            dest: rip("198.18.1.2:8080"),
        },
        &e,
    );
}

#[test]
fn unknown_persistence_engine_is_refused() {
    let mut c = persistent(
        ServiceKey::udp("198.18.0.1:5060".parse().unwrap()),
        360,
        PersistMask::host(Family::Inet),
    );
    c.pe_name = Some("rtsp".into());
    refused(
        Command::AddService(c),
        &TableError::PersistenceEngineNotFound {
            service: ServiceKey::udp("198.18.0.1:5060".parse().unwrap()),
            name: "rtsp".into(),
        },
    );
}

#[test]
fn persistence_timeout_out_of_range_is_refused() {
    let key = ServiceKey::tcp("198.18.0.2:443".parse().unwrap());
    for timeout in [0, MAX_TIMEOUT + 1] {
        refused(
            Command::AddService(persistent(key, timeout, PersistMask::host(Family::Inet))),
            &TableError::PersistenceTimeoutOutOfRange {
                service: key,
                timeout,
            },
        );
    }
}

#[test]
fn persistence_mask_must_fit_the_family() {
    let key = ServiceKey::tcp("[2001:db8::2]:443".parse().unwrap());
    for mask in [
        PersistMask::V6(0),
        PersistMask::V6(129),
        PersistMask::V4(Ipv4Addr::new(255, 255, 255, 0)),
    ] {
        refused(
            Command::AddService(persistent(key, 60, mask)),
            &TableError::PersistenceMaskInvalid {
                service: key,
                netmask: format!("{mask:?}"),
            },
        );
    }
}

#[test]
fn one_packet_scheduling_is_only_for_udp_and_fwmark() {
    let key = ServiceKey::tcp("198.18.0.3:80".parse().unwrap());
    let c = ServiceConfig {
        one_packet: true,
        ..ServiceConfig::new(key)
    };
    refused(
        Command::AddService(c),
        &TableError::OnePacketNotUdp { service: key },
    );
    let mut t = Table::new();
    for key in [
        ServiceKey::udp("198.18.0.3:53".parse().unwrap()),
        ServiceKey::FwMark {
            mark: 7,
            family: Family::Inet,
        },
    ] {
        t.apply(Command::AddService(ServiceConfig {
            one_packet: true,
            ..ServiceConfig::new(key)
        }))
        .unwrap();
    }
}

#[test]
fn port_zero_needs_persistence() {
    let key = ServiceKey::tcp("198.18.0.4:0".parse().unwrap());
    refused(
        Command::AddService(ServiceConfig::new(key)),
        &TableError::ZeroPortNotPersistent { service: key },
    );
    let mut t = Table::new();
    t.apply(Command::AddService(persistent(
        key,
        360,
        PersistMask::host(Family::Inet),
    )))
    .unwrap();
}

#[test]
fn fwmark_zero_is_refused() {
    let key = ServiceKey::FwMark {
        mark: 0,
        family: Family::Inet,
    };
    refused(
        Command::AddService(ServiceConfig::new(key)),
        &TableError::ZeroFwMark,
    );
}

#[test]
fn unknown_scheduler_flag_bits_are_refused() {
    let key = ServiceKey::tcp("198.18.0.5:80".parse().unwrap());
    let c = ServiceConfig {
        sched_flags: SchedFlags(0x40),
        scheduler: SchedulerKind::Sh,
        ..ServiceConfig::new(key)
    };
    refused(
        Command::AddService(c),
        &TableError::SchedFlagsInvalid {
            service: key,
            flags: 0x40,
            scheduler: SchedulerKind::Sh,
        },
    );
}

#[test]
fn weight_above_65535_is_refused() {
    refused(
        Command::AddDest {
            service: vip(),
            dest: masq("198.18.1.9:80").with_weight(MAX_WEIGHT + 1),
        },
        &TableError::WeightOutOfRange {
            dest: rip("198.18.1.9:80"),
            weight: MAX_WEIGHT + 1,
        },
    );
}

#[test]
fn thresholds_out_of_range_or_crossed_are_refused() {
    let mut d = masq("198.18.1.9:80");
    d.u_threshold = u32::MAX;
    refused(
        Command::AddDest {
            service: vip(),
            dest: d,
        },
        &TableError::ThresholdOutOfRange {
            dest: d.addr,
            threshold: u32::MAX,
        },
    );
    let mut d = masq("198.18.1.9:80");
    d.u_threshold = 10;
    d.l_threshold = 11;
    let e = TableError::ThresholdOrder {
        dest: d.addr,
        upper: 10,
        lower: 11,
    };
    assert_eq!(e.errno_class(), ErrnoClass::Range);
    refused(
        Command::AddDest {
            service: vip(),
            dest: d,
        },
        &e,
    );
    // The kernel also refuses a lower threshold without an upper one.
    d.u_threshold = 0;
    d.l_threshold = 3;
    refused(
        Command::AddDest {
            service: vip(),
            dest: d,
        },
        &TableError::ThresholdOrder {
            dest: d.addr,
            upper: 0,
            lower: 3,
        },
    );
}

#[test]
fn mixed_families_are_only_for_tunnels() {
    let d = DestConfig::new(rip("[2001:db8::20]:80"), ForwardMethod::Route);
    refused(
        Command::AddDest {
            service: vip(),
            dest: d,
        },
        &TableError::MixedFamily {
            service: vip(),
            dest: d.addr,
        },
    );
    let mut t = table();
    let tun = DestConfig::new(
        rip("[2001:db8::20]:80"),
        ForwardMethod::Tunnel(Tunnel::IPIP),
    );
    t.apply(Command::AddDest {
        service: vip(),
        dest: tun,
    })
    .unwrap();
}

#[test]
fn non_unicast_dests_are_refused() {
    for addr in [
        "0.0.0.0:80",
        "0.1.2.3:80",
        "224.0.0.1:80",
        "239.255.0.1:80",
        "255.255.255.255:80",
    ] {
        refused(
            Command::AddDest {
                service: vip(),
                dest: masq(addr),
            },
            &TableError::DestNotUnicast { dest: rip(addr) },
        );
    }
    for addr in ["[ff02::1]:80", "[fe80::1]:80", "[febf::1]:80", "[::]:80"] {
        refused(
            Command::AddDest {
                service: vip6(),
                dest: masq(addr),
            },
            &TableError::DestNotUnicast { dest: rip(addr) },
        );
    }
}

#[test]
fn tunnel_options_must_fit_the_tunnel_type() {
    let cases = [
        (
            TunnelKind::Gue { port: 0 },
            TunnelCsum::NoCsum,
            "a GUE tunnel needs a port (1..=65535)",
        ),
        (
            TunnelKind::Ipip,
            TunnelCsum::Csum,
            "an IPIP tunnel takes no checksum option",
        ),
        (
            TunnelKind::Gre,
            TunnelCsum::RemCsum,
            "a GRE tunnel takes no remote checksum offload",
        ),
    ];
    for (kind, csum, problem) in cases {
        let d = DestConfig::new(
            rip("198.18.1.9:80"),
            ForwardMethod::Tunnel(Tunnel { kind, csum }),
        );
        refused(
            Command::AddDest {
                service: vip(),
                dest: d,
            },
            &TableError::TunnelInvalid {
                dest: d.addr,
                problem: problem.into(),
            },
        );
    }
}

#[test]
fn route_and_tunnel_dests_take_the_service_port() {
    let mut t = table();
    let d = DestConfig::new(rip("198.18.1.7:8080"), ForwardMethod::Route);
    let changes = t
        .apply(Command::AddDest {
            service: vip(),
            dest: d,
        })
        .unwrap();
    let added = rip("198.18.1.7:80");
    assert_eq!(
        changes,
        vec![rvs_core::Change::DestAdded {
            service: vip(),
            dest: DestConfig { addr: added, ..d }
        }]
    );
    assert!(t.service(&vip()).unwrap().dest(&added).is_some());
}

#[test]
fn mh_holds_at_most_its_table_size_of_dests() {
    let key = ServiceKey::tcp("198.18.0.6:80".parse().unwrap());
    let mut commands = vec![Command::AddService(ServiceConfig::new(key))];
    for i in 0..4094u32 {
        let addr = SocketAddr::new(Ipv4Addr::from(0xC613_0000 + i).into(), 80);
        commands.push(Command::AddDest {
            service: key,
            dest: DestConfig::new(addr, ForwardMethod::Masq),
        });
    }
    let mut t = Table::new();
    t.apply(Command::batch(commands)).unwrap();
    let e = t
        .apply(Command::EditService(
            ServiceConfig::new(key).with_scheduler(SchedulerKind::Mh),
        ))
        .unwrap_err();
    assert_eq!(
        e,
        TableError::TooManyDests {
            service: key,
            scheduler: SchedulerKind::Mh,
            limit: 4093
        }
    );
    assert_eq!(
        t.service(&key).unwrap().config().scheduler,
        SchedulerKind::Wlc
    );
}

#[test]
fn timeouts_out_of_range_are_refused_and_zero_keeps_a_value() {
    refused(
        Command::SetTimeouts(Timeouts {
            tcp: 1,
            tcp_fin: MAX_TIMEOUT + 1,
            udp: 1,
        }),
        &TableError::TimeoutOutOfRange {
            name: "tcpfin".into(),
            value: MAX_TIMEOUT + 1,
        },
    );
    let mut t = table();
    t.apply(Command::SetTimeouts(Timeouts {
        tcp: 0,
        tcp_fin: 30,
        udp: 0,
    }))
    .unwrap();
    assert_eq!(
        t.timeouts(),
        Timeouts {
            tcp: 900,
            tcp_fin: 30,
            udp: 300
        }
    );
}

#[test]
fn a_failing_batch_applies_nothing_and_names_its_command() {
    let key = ServiceKey::udp("198.18.0.7:53".parse().unwrap());
    let batch = Command::batch(vec![
        Command::AddService(ServiceConfig::new(key)),
        Command::AddDest {
            service: key,
            dest: masq("198.18.1.1:53"),
        },
        Command::AddDest {
            service: key,
            dest: masq("198.18.1.1:53"),
        },
    ]);
    refused(
        batch,
        &TableError::InBatch {
            index: 2,
            source: Box::new(TableError::DestExists {
                service: key,
                dest: rip("198.18.1.1:53"),
            }),
        },
    );
}

#[test]
fn a_proxy_protocol_header_is_only_for_tcp() {
    let key = ServiceKey::udp("198.18.0.8:53".parse().unwrap());
    let c = ServiceConfig {
        proxy_protocol: Some(rvs_core::ProxyProtocol::V2),
        ..ServiceConfig::new(key)
    };
    refused(
        Command::AddService(c),
        &TableError::ProxyProtocolNotTcp { service: key },
    );
}
