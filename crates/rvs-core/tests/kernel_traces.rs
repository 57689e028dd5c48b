//! The schedulers' decisions against reference traces worked out from the kernel's sources
//! (testdata/sched/traces.json, made by testdata/sched/reference.py; see its README).
//!
//! Each case builds a real table through `Table::apply`, exactly as ipvsadm commands would, and
//! asks the service for a dest per client.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{
    Command, DestConfig, Flow, ForwardMethod, Persistence, SchedFlags, SchedulerKind,
    ServiceConfig, ServiceKey, Table, Timestamp,
};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

fn traces() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/sched/traces.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("traces.json")).expect("json")
}

fn fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(v) => {
            let n = u128::from(v);
            (0..4).fold(0, |acc, i| acc ^ ((n >> (96 - 32 * i)) as u32))
        }
    }
}

/// A service whose dests, in kernel list order, are `dests` (added last to first).
fn table_with(
    scheduler: SchedulerKind,
    flags: u32,
    dests: &[SocketAddr],
    weights: &[u32],
) -> (Table, ServiceKey) {
    let family_v6 = dests[0].is_ipv6();
    let vip: SocketAddr = if family_v6 {
        "[2001:db8::100]:80".parse().unwrap()
    } else {
        "198.18.0.100:80".parse().unwrap()
    };
    let key = ServiceKey::tcp(vip);
    let mut config = ServiceConfig::new(key).with_scheduler(scheduler);
    config.sched_flags = SchedFlags(flags);
    let mut table = Table::new();
    table.apply(Command::AddService(config)).unwrap();
    for (addr, w) in dests.iter().zip(weights).rev() {
        let dest = DestConfig::new(*addr, ForwardMethod::Masq).with_weight(*w);
        table
            .apply(Command::AddDest { service: key, dest })
            .unwrap();
    }
    let listed: Vec<SocketAddr> = table
        .service(&key)
        .unwrap()
        .dests()
        .iter()
        .map(|d| d.addr())
        .collect();
    assert_eq!(listed, dests, "kernel list order is newest first");
    (table, key)
}

fn quiesce_first(table: &mut Table, key: ServiceKey, dest: SocketAddr) {
    let d = DestConfig::new(dest, ForwardMethod::Masq).with_weight(0);
    table
        .apply(Command::EditDest {
            service: key,
            dest: d,
        })
        .unwrap();
}

fn addrs(v: &Value) -> Vec<SocketAddr> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect()
}

fn check_hashing(kind: SchedulerKind, section: &str) {
    let t = traces();
    let cases = t[section].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let dests = addrs(&case["dests"]);
        let weights: Vec<u32> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap() as u32)
            .collect();
        let flags = match case["flags"].as_str().unwrap() {
            "port" => SchedFlags::SCHED2,
            "fallback" => SchedFlags::SCHED1,
            _ => 0,
        };
        let (mut table, key) = table_with(kind, flags, &dests, &weights);
        if case["quiesce_first"].as_bool().unwrap() {
            quiesce_first(&mut table, key, dests[0]);
        }
        let base = case["client_port_base"].as_u64().unwrap() as u32;
        let mut rng = SmallRng::seed_from_u64(1);
        for (client, pick) in case["clients"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["picks"].as_array().unwrap())
        {
            let ip: IpAddr = client.as_str().unwrap().parse().unwrap();
            let port = u16::try_from(base + (fold(ip) & 0xFF)).unwrap();
            let flow = Flow {
                client: SocketAddr::new(ip, port),
                local: key_addr(key),
            };
            let got = table
                .service_mut(&key)
                .unwrap()
                .schedule(&flow, true, Timestamp::ZERO, &mut rng)
                .ok()
                .map(|t| t.dest);
            let want = pick.as_u64().map(|i| dests[i as usize]);
            assert_eq!(got, want, "{section} {:?} client {ip}", case["flags"]);
        }
    }
}

fn key_addr(key: ServiceKey) -> SocketAddr {
    match key {
        ServiceKey::Inet { addr, .. } => addr,
        ServiceKey::FwMark { .. } => unreachable!(),
    }
}

#[test]
fn sh_matches_the_kernel_traces() {
    check_hashing(SchedulerKind::Sh, "sh");
}

#[test]
fn mh_matches_the_kernel_traces() {
    check_hashing(SchedulerKind::Mh, "mh");
}

#[test]
fn dh_matches_the_kernel_traces() {
    let t = traces();
    for case in t["dh"].as_array().unwrap() {
        let dests = addrs(&case["dests"]);
        let weights: Vec<u32> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap() as u32)
            .collect();
        let (mut table, key) = table_with(SchedulerKind::Dh, 0, &dests, &weights);
        let mut rng = SmallRng::seed_from_u64(1);
        for (target, pick) in case["targets"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["picks"].as_array().unwrap())
        {
            let local = SocketAddr::new(target.as_str().unwrap().parse().unwrap(), 80);
            let flow = Flow {
                client: "198.18.200.1:5555".parse().unwrap(),
                local,
            };
            let got = table
                .service_mut(&key)
                .unwrap()
                .schedule(&flow, true, Timestamp::ZERO, &mut rng)
                .ok()
                .map(|t| t.dest);
            assert_eq!(
                got,
                pick.as_u64().map(|i| dests[i as usize]),
                "dh target {local}"
            );
        }
    }
}

fn sequence(kind: SchedulerKind, weights: &[u32], n: usize) -> Vec<Option<usize>> {
    let dests: Vec<SocketAddr> = (1..=weights.len())
        .map(|i| SocketAddr::from(([198, 18, 1, i as u8], 80)))
        .collect();
    let (mut table, key) = table_with(kind, 0, &dests, weights);
    let mut rng = SmallRng::seed_from_u64(1);
    (0..n)
        .map(|_| {
            pick_one(&mut table, key, &mut rng).and_then(|d| dests.iter().position(|x| *x == d))
        })
        .collect()
}

#[test]
fn wrr_and_rr_match_the_kernel_traces() {
    let t = traces();
    for (section, kind) in [("wrr", SchedulerKind::Wrr), ("rr", SchedulerKind::Rr)] {
        for case in t[section].as_array().unwrap() {
            let weights: Vec<u32> = case["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_u64().unwrap() as u32)
                .collect();
            let want: Vec<Option<usize>> = case["picks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().map(|i| i as usize))
                .collect();
            assert_eq!(
                sequence(kind, &weights, want.len()),
                want,
                "{section} weights {weights:?}"
            );
        }
    }
}

#[test]
fn persistence_is_not_needed_for_hashing_but_combines_with_it() {
    // A persistent sh service keeps the template's dest even after the client's bucket moves.
    let dests: Vec<SocketAddr> = (1..=3)
        .map(|i| SocketAddr::from(([198, 18, 1, i], 80)))
        .collect();
    let (mut table, key) = table_with(SchedulerKind::Sh, 0, &dests, &[1, 1, 1]);
    let mut config = table.service(&key).unwrap().config().clone();
    config.persistence = Some(Persistence {
        timeout: 60,
        netmask: rvs_core::PersistMask::host(rvs_core::Family::Inet),
    });
    table.apply(Command::EditService(config)).unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let flow = Flow {
        client: "198.18.7.7:1234".parse().unwrap(),
        local: key_addr(key),
    };
    let first = table
        .service_mut(&key)
        .unwrap()
        .schedule(&flow, true, Timestamp::ZERO, &mut rng)
        .unwrap();
    let other = *dests.iter().find(|d| **d != first.dest).unwrap();
    table
        .apply(Command::DelDest {
            service: key,
            dest: other,
        })
        .unwrap();
    let again = table
        .service_mut(&key)
        .unwrap()
        .schedule(&flow, true, Timestamp(1000), &mut rng)
        .unwrap();
    assert_eq!(again.dest, first.dest);
}

/// One pick through the service (released at once, as a short connection would be).
fn pick_one(table: &mut Table, key: ServiceKey, rng: &mut SmallRng) -> Option<SocketAddr> {
    let flow = Flow {
        client: "198.18.200.1:5555".parse().unwrap(),
        local: key_addr(key),
    };
    let svc = table.service_mut(&key).unwrap();
    let t = svc.schedule(&flow, true, Timestamp::ZERO, rng).ok()?;
    let dest = t.dest;
    svc.release(t);
    Some(dest)
}

#[test]
fn wrr_and_rr_follow_the_kernel_change_by_change() {
    let t = traces();
    for (section, kind) in [
        ("wrr_changes", SchedulerKind::Wrr),
        ("rr_changes", SchedulerKind::Rr),
    ] {
        for case in t[section].as_array().unwrap() {
            let key = ServiceKey::tcp("198.18.0.100:80".parse().unwrap());
            let mut table = Table::new();
            table
                .apply(Command::AddService(
                    ServiceConfig::new(key).with_scheduler(kind),
                ))
                .unwrap();
            let mut rng = SmallRng::seed_from_u64(1);
            let mut got = Vec::new();
            for e in case["events"].as_array().unwrap() {
                let e = e.as_array().unwrap();
                let addr = || e[1].as_str().unwrap().parse::<SocketAddr>().unwrap();
                let dest = || {
                    DestConfig::new(addr(), ForwardMethod::Masq)
                        .with_weight(e[2].as_u64().unwrap() as u32)
                };
                let command = match e[0].as_str().unwrap() {
                    "add" => Command::AddDest {
                        service: key,
                        dest: dest(),
                    },
                    "edit" => Command::EditDest {
                        service: key,
                        dest: dest(),
                    },
                    "del" => Command::DelDest {
                        service: key,
                        dest: addr(),
                    },
                    "pick" => {
                        for _ in 0..e[1].as_u64().unwrap() {
                            got.push(pick_one(&mut table, key, &mut rng));
                        }
                        continue;
                    }
                    other => panic!("unknown event {other}"),
                };
                table.apply(command).unwrap();
            }
            let want: Vec<Option<SocketAddr>> = case["picks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().map(|a| a.parse().unwrap()))
                .collect();
            assert_eq!(got, want, "{section}: {}", case["events"]);
        }
    }
}

#[test]
fn a_service_switched_to_wrr_starts_from_the_kernels_init() {
    // `-E -s wrr` on a service that has its dests: ip_vs_wrr_init_svc over them.
    let t = traces();
    for case in t["wrr_init"].as_array().unwrap() {
        let weights: Vec<u32> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap() as u32)
            .collect();
        let dests: Vec<SocketAddr> = (1..=weights.len())
            .map(|i| SocketAddr::from(([198, 18, 1, i as u8], 80)))
            .collect();
        let (mut table, key) = table_with(SchedulerKind::Rr, 0, &dests, &weights);
        let config = table
            .service(&key)
            .unwrap()
            .config()
            .clone()
            .with_scheduler(SchedulerKind::Wrr);
        table.apply(Command::EditService(config)).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let got: Vec<Option<usize>> = (0..case["picks"].as_array().unwrap().len())
            .map(|_| {
                pick_one(&mut table, key, &mut rng).and_then(|d| dests.iter().position(|x| *x == d))
            })
            .collect();
        let want: Vec<Option<usize>> = case["picks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().map(|i| i as usize))
            .collect();
        assert_eq!(got, want, "wrr_init {weights:?}");
    }
}
