//! What one acknowledged change costs the state store, at 100 and 50,000 dests: the journal
//! (an appended, fsynced line) against rewriting the whole snapshot (what every change cost
//! before the journal), measured in the same run on the same disk. Medians of 200 changes.
//!
//! `cargo run --release -p rvsd --example state_cost [DIR]` (DIR: where to write; default a
//! temporary directory, which may be a tmpfs: give a real disk's directory to see fsync).

use rvs_core::{Command, DestConfig, ForwardMethod, ServiceConfig, ServiceKey, Table};
use rvsd::state::{Entry, State, StateStore};
use std::time::{Duration, Instant};

fn table(dests: u32) -> Table {
    let mut t = Table::new();
    let mut cmds = Vec::new();
    for s in 0..dests.div_ceil(100) {
        let key = ServiceKey::tcp(std::net::SocketAddr::from((
            [198, 18, (s / 250) as u8, (s % 250 + 1) as u8],
            80,
        )));
        cmds.push(Command::AddService(ServiceConfig::new(key)));
        for d in 0..100.min(dests - s * 100) {
            cmds.push(Command::AddDest {
                service: key,
                dest: DestConfig::new(
                    std::net::SocketAddr::from((
                        [198, 19, (d / 250) as u8, (d % 250 + 1) as u8],
                        80,
                    )),
                    ForwardMethod::Masq,
                ),
            });
        }
    }
    t.apply(Command::batch(cmds)).unwrap();
    t
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let base = std::env::args().nth(1).map(std::path::PathBuf::from);
    println!("| dests | journal append (median) | whole snapshot (median) | ratio |");
    println!("|---|---|---|---|");
    for dests in [100, 50_000] {
        let tmp = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let mut t = table(dests);
        let state = State {
            table: t.config(),
            daemons: vec![],
        };
        let mut store = StateStore::open(tmp.path())
            .unwrap()
            .compacting_every(u64::MAX);
        store.load().unwrap();
        store.save(&state).unwrap();
        let key = t.services().next().unwrap().key();
        let mut journal = Vec::new();
        let mut snapshot = Vec::new();
        let edit = |i: u32| Command::EditDest {
            service: key,
            dest: DestConfig::new(
                std::net::SocketAddr::from(([198, 19, 0, 1], 80)),
                ForwardMethod::Masq,
            )
            .with_weight(i % 50 + 1),
        };
        for i in 0..200u32 {
            let c = edit(i);
            t.apply(c.clone()).unwrap();
            let at = Instant::now();
            store.record(&Entry::Command(c), State::default).unwrap();
            journal.push(at.elapsed());
        }
        for i in 0..200u32 {
            t.apply(edit(i)).unwrap();
            let at = Instant::now();
            // What each change cost before the journal: the whole table, serialised and
            // written atomically.
            store
                .save(&State {
                    table: t.config(),
                    daemons: vec![],
                })
                .unwrap();
            snapshot.push(at.elapsed());
        }
        let (j, s) = (median(journal), median(snapshot));
        println!(
            "| {dests} | {j:.2?} | {s:.2?} | {:.1}x |",
            s.as_secs_f64() / j.as_secs_f64()
        );
    }
}
