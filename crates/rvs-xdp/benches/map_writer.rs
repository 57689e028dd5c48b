//! What a weight change on an mh service costs the map writer: writing only the Maglev slots
//! that moved against rewriting the whole 4,093-slot table, on the in-memory maps (the
//! writer's own work) and, as root with the BPF object built, on the kernel's maps (one
//! syscall a slot).
//!
//! `cargo bench -p rvs-xdp --bench map_writer`
#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use criterion::{criterion_group, criterion_main, Criterion};
use rvs_core::{
    Change, DataPlane, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey,
};
use rvs_xdp::neighbors::Neighbors;
use rvs_xdp::plane::memory::MemoryMaps;
use rvs_xdp::plane::writer::{Events, MapWriter};
use rvs_xdp::{DirectorAddr, XdpPlane};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

const DESTS: u8 = 8;

fn vip() -> ServiceKey {
    ServiceKey::tcp("198.18.0.1:80".parse().unwrap())
}

fn real(i: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, i], 80))
}

fn mh_service() -> Vec<Change> {
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(vip()).with_scheduler(SchedulerKind::Mh),
    )];
    changes.extend((1..=DESTS).map(|i| Change::DestAdded {
        service: vip(),
        dest: DestConfig::new(real(i), ForwardMethod::Route),
    }));
    changes
}

/// The weight edit of round `n`: the first dest between weights 1 and 2, so every round
/// moves slots.
fn edit(n: u64) -> [Change; 1] {
    [Change::DestEdited {
        service: vip(),
        dest: DestConfig::new(real(1), ForwardMethod::Route)
            .with_weight(1 + u32::from(n.is_multiple_of(2))),
    }]
}

fn no_mac(_: IpAddr) -> Option<[u8; 6]> {
    None
}

struct NoNeighbors;
impl Neighbors for NoNeighbors {
    fn mac(&self, _: IpAddr) -> Option<[u8; 6]> {
        None
    }
}

fn memory(c: &mut Criterion) {
    let mut w = MapWriter::new(
        MemoryMaps::default(),
        rvs_bpf_abi::Config::default(),
        Arc::new(AtomicU32::new(0)),
    )
    .unwrap();
    let apply = |w: &mut MapWriter<MemoryMaps>, changes: &[Change]| {
        w.apply(changes, &no_mac, &mut Events::default()).unwrap();
    };
    apply(&mut w, &mh_service());
    let mut g = c.benchmark_group("mh weight edit, memory maps");
    let mut n = 0;
    g.bench_function("changed slots", |b| {
        b.iter(|| {
            n += 1;
            apply(&mut w, &edit(n));
        });
    });
    g.bench_function("whole table", |b| {
        b.iter(|| {
            n += 1;
            w.layout.forget_slots();
            apply(&mut w, &edit(n));
        });
    });
    g.finish();
}

fn kernel(c: &mut Criterion) {
    let director = DirectorAddr {
        tunnel_src: "198.18.0.254".parse().unwrap(),
        tunnel_src6: None,
    };
    let mut p = match XdpPlane::load(director, Box::new(NoNeighbors)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kernel maps skipped (needs root and the BPF object): {e}");
            return;
        }
    };
    p.apply(&mh_service()).unwrap();
    let before = p.slot_writes();
    p.apply(&edit(2)).unwrap();
    eprintln!(
        "one mh weight edit over {DESTS} dests writes {} of {} Maglev slots",
        p.slot_writes() - before,
        rvs_bpf_abi::MH_SIZE
    );
    let mut g = c.benchmark_group("mh weight edit, kernel maps");
    let mut n = 2;
    g.bench_function("changed slots", |b| {
        b.iter(|| {
            n += 1;
            p.apply(&edit(n)).unwrap();
        });
    });
    g.bench_function("whole table", |b| {
        b.iter(|| {
            n += 1;
            p.forget_written_slots();
            p.apply(&edit(n)).unwrap();
        });
    });
    g.finish();
}

criterion_group!(benches, memory, kernel);
criterion_main!(benches);
