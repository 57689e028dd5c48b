//! Persistence templates, thresholds and connection accounting, driven through the public API
//! the data planes use: `schedule`, `set_active`, `record`, `release`, `tick`.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{
    Command, ConnTicket, Counters, DestConfig, Family, Flow, ForwardMethod, PersistMask,
    Persistence, SchedulerKind, ServiceConfig, ServiceKey, Table, Timestamp,
};
use std::net::{Ipv4Addr, SocketAddr};

const VIP: &str = "198.18.0.1:80";

fn key() -> ServiceKey {
    ServiceKey::tcp(VIP.parse().unwrap())
}

fn dest(i: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, i], 80))
}

fn flow(client: &str) -> Flow {
    Flow {
        client: client.parse().unwrap(),
        local: VIP.parse().unwrap(),
    }
}

/// An rr service with `n` dests of weight 1 (kernel order: dest(1) first), optionally persistent.
fn setup(n: u8, persistence: Option<Persistence>) -> Table {
    setup_with(SchedulerKind::Rr, n, persistence)
}

/// The same with another scheduler.
fn setup_with(scheduler: SchedulerKind, n: u8, persistence: Option<Persistence>) -> Table {
    let mut cmds = vec![Command::AddService(ServiceConfig {
        persistence,
        ..ServiceConfig::new(key()).with_scheduler(scheduler)
    })];
    for i in (1..=n).rev() {
        cmds.push(Command::AddDest {
            service: key(),
            dest: DestConfig::new(dest(i), ForwardMethod::Masq),
        });
    }
    let mut t = Table::new();
    t.apply(Command::batch(cmds)).unwrap();
    t
}

fn persist(timeout: u32, mask: [u8; 4]) -> Option<Persistence> {
    Some(Persistence {
        timeout,
        netmask: PersistMask::V4(Ipv4Addr::from(mask)),
    })
}

struct Director {
    table: Table,
    rng: SmallRng,
}

impl Director {
    fn new(table: Table) -> Self {
        Self {
            table,
            rng: SmallRng::seed_from_u64(42),
        }
    }

    fn connect(&mut self, client: &str, at: u64) -> Option<ConnTicket> {
        let svc = self.table.service_mut(&key()).unwrap();
        svc.schedule(&flow(client), true, Timestamp::from_secs(at), &mut self.rng)
            .ok()
    }

    fn close(&mut self, t: ConnTicket) {
        self.table.service_mut(&key()).unwrap().release(t);
    }

    fn counts(&self, i: u8) -> rvs_core::ConnCounts {
        self.table
            .service(&key())
            .unwrap()
            .dest(&dest(i))
            .unwrap()
            .conns
    }

    fn set_weight(&mut self, i: u8, w: u32) {
        let d = DestConfig::new(dest(i), ForwardMethod::Masq).with_weight(w);
        self.table
            .apply(Command::EditDest {
                service: key(),
                dest: d,
            })
            .unwrap();
    }
}

#[test]
fn a_persistent_client_stays_on_its_dest_whatever_its_port() {
    let mut d = Director::new(setup(3, persist(300, [255, 255, 255, 255])));
    let first = d.connect("198.18.9.1:1000", 0).unwrap();
    for port in 1001..1020 {
        let t = d.connect(&format!("198.18.9.1:{port}"), 1).unwrap();
        assert_eq!(t.dest, first.dest);
        d.close(t);
    }
    let other = d.connect("198.18.9.2:1000", 1).unwrap();
    assert_ne!(
        other.dest, first.dest,
        "rr gives the next client the next dest"
    );
    assert_eq!(
        d.counts(1).persistent + d.counts(2).persistent + d.counts(3).persistent,
        2
    );
}

#[test]
fn the_netmask_groups_clients_of_one_network() {
    let mut d = Director::new(setup(3, persist(300, [255, 255, 255, 0])));
    let first = d.connect("198.18.9.1:1000", 0).unwrap();
    for host in 2..50 {
        assert_eq!(
            d.connect(&format!("198.18.9.{host}:1000"), 1).unwrap().dest,
            first.dest
        );
    }
    assert_ne!(d.connect("198.18.10.1:1000", 1).unwrap().dest, first.dest);
}

#[test]
fn a_template_expires_its_timeout_after_the_last_connection_ends() {
    let mut d = Director::new(setup(2, persist(60, [255; 4])));
    let t = d.connect("198.18.9.1:1000", 0).unwrap();
    let dest = t.dest;
    // Open past the timeout: the template lives on.
    d.table.tick(Timestamp::from_secs(100));
    let t2 = d.connect("198.18.9.1:1001", 100).unwrap();
    assert_eq!(t2.dest, dest);
    d.close(t);
    d.close(t2);
    d.table.tick(Timestamp::from_secs(159));
    assert_eq!(d.table.service(&key()).unwrap().templates().len(), 1);
    d.table.tick(Timestamp::from_secs(160));
    assert_eq!(
        d.table.service(&key()).unwrap().templates().len(),
        0,
        "60 s after the last use"
    );
    assert_eq!(d.counts(1).persistent + d.counts(2).persistent, 0);
    // rr continues: the client now lands on the other dest.
    assert_ne!(d.connect("198.18.9.1:1002", 161).unwrap().dest, dest);
}

#[test]
fn a_quiesced_dest_keeps_its_persistent_clients_but_takes_no_new_ones() {
    let mut d = Director::new(setup(2, persist(300, [255; 4])));
    let t = d.connect("198.18.9.1:1000", 0).unwrap();
    let i = if t.dest == dest(1) { 1 } else { 2 };
    d.set_weight(i, 0);
    assert_eq!(
        d.connect("198.18.9.1:1001", 1).unwrap().dest,
        t.dest,
        "template still valid"
    );
    for host in 2..10 {
        assert_ne!(
            d.connect(&format!("198.18.9.{host}:1"), 1).unwrap().dest,
            t.dest
        );
    }
}

#[test]
fn expire_quiescent_template_reschedules_clients_of_a_quiesced_dest() {
    let mut d = Director::new(setup(2, persist(300, [255; 4])));
    d.table.set_expire_quiescent_template(true);
    let t = d.connect("198.18.9.1:1000", 0).unwrap();
    let i = if t.dest == dest(1) { 1 } else { 2 };
    d.set_weight(i, 0);
    assert_ne!(d.connect("198.18.9.1:1001", 1).unwrap().dest, t.dest);
    assert_eq!(d.counts(i).persistent, 0, "the old template was dropped");
}

#[test]
fn a_removed_dest_sends_its_persistent_clients_elsewhere() {
    let mut d = Director::new(setup(2, persist(300, [255; 4])));
    let t = d.connect("198.18.9.1:1000", 0).unwrap();
    d.table
        .apply(Command::DelDest {
            service: key(),
            dest: t.dest,
        })
        .unwrap();
    let again = d.connect("198.18.9.1:1001", 1).unwrap();
    assert_ne!(again.dest, t.dest);
    // The old ticket's release is harmless: its dest is gone.
    d.close(t);
}

#[test]
fn a_readded_dest_is_not_confused_with_its_predecessor() {
    let mut d = Director::new(setup(1, None));
    let t = d.connect("198.18.9.1:1000", 0).unwrap();
    d.table
        .apply(Command::DelDest {
            service: key(),
            dest: dest(1),
        })
        .unwrap();
    d.table
        .apply(Command::AddDest {
            service: key(),
            dest: DestConfig::new(dest(1), ForwardMethod::Masq),
        })
        .unwrap();
    let fresh = d.connect("198.18.9.2:1000", 1).unwrap();
    d.close(t);
    assert_eq!(d.counts(1).active, 1, "only the new connection counts");
    d.close(fresh);
    assert_eq!(d.counts(1).active, 0);
}

fn threshold_setup(upper: u32, lower: u32) -> Director {
    let mut t = setup(2, None);
    let mut c = DestConfig::new(dest(1), ForwardMethod::Masq);
    c.u_threshold = upper;
    c.l_threshold = lower;
    t.apply(Command::EditDest {
        service: key(),
        dest: c,
    })
    .unwrap();
    // Make dest 2 unattractive so rr alone does not explain the picks: quiesce it.
    let mut d = Director::new(t);
    d.set_weight(2, 0);
    d
}

#[test]
fn the_upper_threshold_stops_new_connections() {
    let mut d = threshold_setup(2, 0);
    let a = d.connect("198.18.9.1:1", 0).unwrap();
    let _b = d.connect("198.18.9.2:1", 0).unwrap();
    assert!(
        d.connect("198.18.9.3:1", 0).is_none(),
        "2 connections reach the threshold of 2"
    );
    d.close(a);
    assert!(
        d.connect("198.18.9.3:1", 0).is_some(),
        "1*4 < 2*3 clears the overload"
    );
}

#[test]
fn without_a_lower_threshold_the_overload_clears_below_three_quarters() {
    let mut d = threshold_setup(4, 0);
    let mut open: Vec<_> = (1..=4)
        .map(|i| d.connect(&format!("198.18.9.{i}:1"), 0).unwrap())
        .collect();
    assert!(d.connect("198.18.9.9:1", 0).is_none());
    d.close(open.pop().unwrap());
    assert!(
        d.connect("198.18.9.9:1", 0).is_none(),
        "3*4 < 4*3 is false: still overloaded"
    );
    d.close(open.pop().unwrap());
    assert!(d.connect("198.18.9.9:1", 0).is_some());
}

#[test]
fn with_a_lower_threshold_the_overload_clears_below_it() {
    let mut d = threshold_setup(4, 2);
    let mut open: Vec<_> = (1..=4)
        .map(|i| d.connect(&format!("198.18.9.{i}:1"), 0).unwrap())
        .collect();
    d.close(open.pop().unwrap());
    d.close(open.pop().unwrap());
    assert!(
        d.connect("198.18.9.9:1", 0).is_none(),
        "2 is not below the lower threshold 2"
    );
    d.close(open.pop().unwrap());
    assert!(d.connect("198.18.9.9:1", 0).is_some());
}

#[test]
fn raising_the_upper_threshold_clears_the_overload_at_once() {
    let mut d = threshold_setup(1, 0);
    let _a = d.connect("198.18.9.1:1", 0).unwrap();
    assert!(d.connect("198.18.9.2:1", 0).is_none());
    let mut c = DestConfig::new(dest(1), ForwardMethod::Masq);
    c.u_threshold = 5;
    d.table
        .apply(Command::EditDest {
            service: key(),
            dest: c,
        })
        .unwrap();
    assert!(d.connect("198.18.9.2:1", 0).is_some());
}

#[test]
fn counters_follow_state_changes_traffic_and_releases() {
    let mut d = Director::new(setup(1, None));
    let mut t = d.connect("198.18.9.1:1", 0).unwrap();
    assert_eq!((d.counts(1).active, d.counts(1).inactive), (1, 0));
    let svc = d.table.service_mut(&key()).unwrap();
    svc.set_active(&mut t, false);
    svc.record(
        &t,
        Counters {
            in_pkts: 3,
            out_pkts: 2,
            in_bytes: 300,
            out_bytes: 2000,
            conns: 0,
        },
    );
    assert_eq!((d.counts(1).active, d.counts(1).inactive), (0, 1));
    let svc = d.table.service(&key()).unwrap();
    let want = Counters {
        conns: 1,
        in_pkts: 3,
        out_pkts: 2,
        in_bytes: 300,
        out_bytes: 2000,
    };
    assert_eq!(svc.stats().counters(), want);
    assert_eq!(svc.dest(&dest(1)).unwrap().stats.counters(), want);
    d.close(t);
    assert_eq!(d.counts(1), rvs_core::ConnCounts::default());
    d.table.apply(Command::Zero { service: None }).unwrap();
    assert_eq!(
        d.table.service(&key()).unwrap().stats().counters(),
        Counters::default()
    );
}

#[test]
fn fwmark_and_ipv6_services_schedule_too() {
    let mut t = Table::new();
    let fw = ServiceKey::FwMark {
        mark: 1,
        family: Family::Inet6,
    };
    t.apply(Command::AddService(ServiceConfig::new(fw)))
        .unwrap();
    let d6: SocketAddr = "[2001:db8::10]:0".parse().unwrap();
    t.apply(Command::AddDest {
        service: fw,
        dest: DestConfig::new(d6, ForwardMethod::Route),
    })
    .unwrap();
    let f = Flow {
        client: "[2001:db8:9::1]:5000".parse().unwrap(),
        local: "[2001:db8::1]:443".parse().unwrap(),
    };
    let mut rng = SmallRng::seed_from_u64(1);
    let got = t
        .service_mut(&fw)
        .unwrap()
        .schedule(&f, true, Timestamp::ZERO, &mut rng)
        .unwrap();
    assert_eq!(got.dest, d6);
}

#[test]
fn a_refused_attempt_is_avoided_uncounted_and_unpersisted() {
    for persistence in [None, persist(300, [255, 255, 255, 255])] {
        let mut t = setup_with(SchedulerKind::Wlc, 2, persistence);
        let mut rng = SmallRng::seed_from_u64(1);
        let svc = t.service_mut(&key()).unwrap();
        let now = Timestamp::from_secs(1);
        // Both idle: wlc takes the first in list order, dest(1), which refuses.
        let first = svc
            .schedule(&flow("198.18.9.1:1000"), true, now, &mut rng)
            .unwrap();
        assert_eq!(first.dest, dest(1));
        svc.refused(first);
        // Idle again, but avoided: the next pick is the other one.
        let second = svc
            .schedule_avoiding(&flow("198.18.9.1:1000"), true, now, &mut rng, &[dest(1)])
            .unwrap();
        assert_eq!(second.dest, dest(2));
        let d1 = svc.dest(&dest(1)).unwrap();
        assert_eq!(
            d1.stats.counters().conns,
            0,
            "the refused attempt is not a connection"
        );
        assert_eq!((d1.conns.active, d1.conns.persistent), (0, 0));
        assert!(
            !d1.overloaded,
            "avoiding leaves the dest's own flag as it was"
        );
        assert_eq!(svc.stats().counters().conns, 1);
        // Avoiding every dest finds none.
        assert!(svc
            .schedule_avoiding(
                &flow("198.18.9.2:1"),
                true,
                now,
                &mut rng,
                &[dest(1), dest(2)]
            )
            .is_err());
        // A persistent client now stays on the dest that answered.
        if persistence.is_some() {
            let again = svc
                .schedule(&flow("198.18.9.1:1001"), true, now, &mut rng)
                .unwrap();
            assert_eq!(again.dest, dest(2));
        }
    }
}
