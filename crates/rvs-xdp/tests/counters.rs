//! The XDP plane's counters and rates as `--stats`, `--rate` and `-Z` show them: IP bytes in
//! and out (NAT's replies are the "out" side), zeroing, a dest that joins again starting from
//! zero, and the kernel's estimator fed by the sweeper. Needs root; skipped with a message
//! otherwise.

mod common;

use common::*;
use rvs_core::{
    Change, Counters, DataPlane, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig,
    ServiceKey,
};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> ServiceKey {
    ServiceKey::tcp("198.18.0.1:80".parse().unwrap())
}

fn dest() -> DestConfig {
    DestConfig::new("198.18.1.4:8080".parse().unwrap(), ForwardMethod::Masq)
}

/// A plane with one rr service masquerading to one real server.
fn nat_plane() -> rvs_xdp::XdpPlane {
    let mut p = plane();
    p.apply(&[
        Change::ServiceAdded(ServiceConfig::new(key()).with_scheduler(SchedulerKind::Rr)),
        Change::DestAdded {
            service: key(),
            dest: dest(),
        },
    ])
    .unwrap();
    p
}

fn counters(p: &rvs_xdp::XdpPlane) -> Counters {
    p.stats().expect("the plane reads its counters")[0].dests[0].counters
}

#[test]
fn nat_counts_both_ways_in_ip_bytes_and_zeroing_starts_over() {
    if !can_run() {
        return;
    }
    let mut p = nat_plane();
    let syn = frame(
        ip("198.18.9.9"),
        ip("198.18.0.1"),
        TCP,
        &tcp(4000, 80, 0x02),
    );
    assert_eq!(run(&mut p, &syn).0, XDP_TX);
    let reply = frame(
        ip("198.18.1.4"),
        ip("198.18.9.9"),
        UDP,
        &udp(8080, 4000, b"x"),
    );
    assert_eq!(
        run(&mut p, &reply).0,
        XDP_PASS,
        "not the connection's protocol: not ours"
    );
    let reply = frame(
        ip("198.18.1.4"),
        ip("198.18.9.9"),
        TCP,
        &tcp(8080, 4000, 0x12),
    );
    assert_eq!(run(&mut p, &reply).0, XDP_TX);
    assert_eq!(run(&mut p, &reply).0, XDP_TX);
    let c = counters(&p);
    assert_eq!(
        c,
        Counters {
            conns: 1,
            in_pkts: 1,
            out_pkts: 2,
            in_bytes: 40,
            out_bytes: 80,
        },
        "IP bytes, as IPVS counts them"
    );
    assert_eq!(
        p.stats().expect("the plane reads its counters")[0].counters,
        c,
        "the service sums its dests"
    );
    p.apply(&[Change::Zeroed { service: None }]).unwrap();
    assert_eq!(counters(&p), Counters::default(), "-Z");
    assert_eq!(run(&mut p, &reply).0, XDP_TX);
    assert_eq!(counters(&p).out_pkts, 1, "counting goes on after -Z");
    // Removed and added again: a new dest to IPVS, with counters from zero.
    p.apply(&[Change::DestRemoved {
        service: key(),
        dest: dest().addr,
    }])
    .unwrap();
    p.apply(&[Change::DestAdded {
        service: key(),
        dest: dest(),
    }])
    .unwrap();
    assert_eq!(counters(&p), Counters::default());
}

#[test]
fn rates_come_from_the_kernels_estimator_over_the_programs_counters() {
    if !can_run() {
        return;
    }
    let mut p = nat_plane();
    let mut sweeper = p.sweeper().unwrap();
    sweeper.sweep().unwrap(); // starts the estimator's clock
    let start = std::time::Instant::now();
    for port in 0..200u16 {
        let syn = frame(
            ip("198.18.9.9"),
            ip("198.18.0.1"),
            TCP,
            &tcp(10_000 + port, 80, 0x02),
        );
        assert_eq!(run(&mut p, &syn).0, XDP_TX);
    }
    // One estimator period later (and less than two).
    std::thread::sleep(std::time::Duration::from_millis(2100).saturating_sub(start.elapsed()));
    sweeper.sweep().unwrap();
    let mut reference = rvs_core::Stats::default();
    reference.estimate(rvs_core::Timestamp(0));
    reference.record(Counters {
        conns: 200,
        in_pkts: 200,
        in_bytes: 200 * 40,
        ..Counters::default()
    });
    reference.estimate(rvs_core::Timestamp(2000));
    let stats = p.stats().expect("the plane reads its counters");
    assert!(reference.rates().cps > 0);
    assert_eq!(
        stats[0].dests[0].rates,
        reference.rates(),
        "the dest's rates"
    );
    assert_eq!(stats[0].rates, reference.rates(), "the service's rates");
    p.apply(&[Change::Zeroed {
        service: Some(key()),
    }])
    .unwrap();
    assert_eq!(
        p.stats().expect("the plane reads its counters")[0].rates,
        rvs_core::Rates::default(),
        "-Z zeroes rates"
    );
}
