//! Applying 10,000 services with 10 dests each, as one batch (a restore or a config load) and
//! as 110,000 single commands (a script of ipvsadm lines).

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rvs_core::{Command, DestConfig, ForwardMethod, ServiceConfig, ServiceKey, Table};
use std::net::{Ipv4Addr, SocketAddr};

fn commands(services: u32, dests: u32) -> Vec<Command> {
    let mut out = Vec::new();
    for s in 0..services {
        let vip = SocketAddr::new(Ipv4Addr::from(0xC612_0000 + s).into(), 80);
        let key = ServiceKey::tcp(vip);
        out.push(Command::AddService(ServiceConfig::new(key)));
        for d in 0..dests {
            let rip = SocketAddr::new(Ipv4Addr::from(0xC613_0000 + s * 16 + d).into(), 8080);
            out.push(Command::AddDest {
                service: key,
                dest: DestConfig::new(rip, ForwardMethod::Masq),
            });
        }
    }
    out
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_10000x10");
    group.sample_size(10);
    group.bench_function("batch", |b| {
        b.iter_batched(
            || commands(10_000, 10),
            |cmds| {
                let mut t = Table::new();
                t.apply(Command::batch(cmds)).unwrap();
                t
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("one_by_one", |b| {
        b.iter_batched(
            || commands(10_000, 10),
            |cmds| {
                let mut t = Table::new();
                for c in cmds {
                    t.apply(c).unwrap();
                }
                t
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
