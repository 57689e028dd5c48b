//! Formatting `ipvsadm -Ln` (and `-Sn`, `-Ln --stats`) for a table of 100,000 dests: 1,000
//! services with 100 real servers each, sorted as ipvsadm sorts them.

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use criterion::{criterion_group, criterion_main, Criterion};
use rvs_core::{Command, DestConfig, ForwardMethod, ServiceConfig, ServiceKey, Table};
use rvs_ipvsadm::format::list_all;
use rvs_ipvsadm::parse::fmt;
use rvs_ipvsadm::resolve::Numeric;
use rvs_proto::TableView;
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddr};

fn table(services: u32, dests: u32) -> TableView {
    let mut commands = Vec::new();
    // Added in an order unlike the listing's, so the sort has work to do.
    for s in (0..services).rev() {
        let vip = SocketAddr::new(Ipv4Addr::from(0xC612_0000 + s * 7 % services).into(), 80);
        let key = ServiceKey::tcp(vip);
        commands.push(Command::AddService(ServiceConfig::new(key)));
        for d in 0..dests {
            let rip = SocketAddr::new(Ipv4Addr::from(0x0A00_0000 + s * 256 + d).into(), 8080);
            commands.push(Command::AddDest {
                service: key,
                dest: DestConfig::new(rip, ForwardMethod::Masq).with_weight(1 + d % 10),
            });
        }
    }
    let mut t = Table::new();
    t.apply(Command::batch(commands))
        .expect("the table applies");
    TableView::from_table(&t, Vec::new(), 4096)
}

fn listing(c: &mut Criterion) {
    let view = table(1_000, 100);
    let mut group = c.benchmark_group("list_100000_dests");
    group.sample_size(10);
    // The baseline: the same number of dest lines written with one plain `write!` each, no
    // sorting, no column logic.
    group.bench_function("plain_lines", |b| {
        b.iter(|| {
            let mut out = String::new();
            for svc in &view.services {
                for d in &svc.dests {
                    let _ = writeln!(out, "  -> {} Masq {} 0 0", d.config.addr, d.config.weight);
                }
            }
            out.len()
        });
    });
    for (name, format) in [
        ("Ln", fmt::NUMERIC),
        ("Sn", fmt::NUMERIC | fmt::RULE),
        ("Ln_stats", fmt::NUMERIC | fmt::STATS),
    ] {
        group.bench_function(name, |b| b.iter(|| list_all(&view, format, &Numeric).len()));
    }
    group.finish();
}

criterion_group!(benches, listing);
criterion_main!(benches);
