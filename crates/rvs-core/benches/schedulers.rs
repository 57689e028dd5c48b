//! Scheduler picks at 10, 100 and 1000 dests: one `schedule` + `release` per iteration, on a
//! service already holding 20 open connections per dest, so the connection-counting
//! schedulers see realistic, uneven load.

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{
    Command, DestConfig, Flow, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey, Table,
    Timestamp,
};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

fn service(kind: SchedulerKind, dests: usize) -> (Table, ServiceKey) {
    let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
    let mut commands = vec![Command::AddService(
        ServiceConfig::new(key).with_scheduler(kind),
    )];
    for i in 0..dests {
        let ip = Ipv4Addr::from(0xC612_0100 + u32::try_from(i).unwrap());
        let weight = u32::try_from(i % 10).unwrap() + 1;
        let dest = DestConfig::new(SocketAddr::new(ip.into(), 80), ForwardMethod::Masq)
            .with_weight(weight);
        commands.push(Command::AddDest { service: key, dest });
    }
    let mut table = Table::new();
    table.apply(Command::batch(commands)).unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    let svc = table.service_mut(&key).unwrap();
    for n in 0..dests * 20 {
        let flow = flow(n);
        let _open = svc.schedule(&flow, n % 3 != 0, Timestamp::ZERO, &mut rng);
    }
    (table, key)
}

fn flow(n: usize) -> Flow {
    let client = Ipv4Addr::from(0xC613_0000 + u32::try_from(n % 65_536).unwrap());
    Flow {
        client: SocketAddr::new(client.into(), 40_000),
        local: "198.18.0.1:80".parse().unwrap(),
    }
}

fn picks(c: &mut Criterion) {
    for kind in SchedulerKind::ALL {
        let mut group = c.benchmark_group(format!("pick/{kind}"));
        for dests in [10, 100, 1000] {
            let (mut table, key) = service(kind, dests);
            let mut rng = SmallRng::seed_from_u64(9);
            let flows: Vec<Flow> = (0..1024).map(flow).collect();
            let mut n = 0usize;
            group.bench_with_input(BenchmarkId::from_parameter(dests), &dests, |b, _| {
                let svc = table.service_mut(&key).unwrap();
                b.iter(|| {
                    n = (n + 1) & 1023;
                    if let Ok(t) =
                        svc.schedule(black_box(&flows[n]), true, Timestamp::ZERO, &mut rng)
                    {
                        svc.release(t);
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, picks);
criterion_main!(benches);
