//! Rates for `--rate`: the kernel's estimator (rvs-core's [`Stats`]) run every 2 seconds over
//! the program's per-CPU counters, for every dest and every service (a service's counters are
//! the sum of its dests', as IPVS counts both at once).
//!
//! The sweeper thread samples the counters on its period; the plane reads the rates and
//! zeroes them with `-Z`. Both hold the book behind a mutex.

use rvs_bpf_abi as abi;
use rvs_core::{Counters, Rates, Stats, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The estimators of every dest and service, by the program's indexes.
#[derive(Debug, Default)]
pub struct RateBook {
    dests: HashMap<u32, Stats>,
    services: HashMap<u32, Stats>,
    /// Which service each dest index belongs to.
    owner: HashMap<u32, u32>,
}

/// The book as the plane and the sweeper share it.
pub type SharedRates = Arc<Mutex<RateBook>>;

/// A dest's counters as rvs-core counts them, summed over CPUs.
#[must_use]
pub fn counters_of(per_cpu: &[abi::Stat]) -> Counters {
    per_cpu.iter().fold(Counters::default(), |mut c, s| {
        c += Counters {
            conns: s.conns,
            in_pkts: s.packets,
            out_pkts: s.out_packets,
            in_bytes: s.bytes,
            out_bytes: s.out_bytes,
        };
        c
    })
}

/// `now - before`, counter by counter (the program's counters only grow, until `-Z`).
fn delta(now: Counters, before: Counters) -> Counters {
    Counters {
        conns: now.conns.wrapping_sub(before.conns),
        in_pkts: now.in_pkts.wrapping_sub(before.in_pkts),
        out_pkts: now.out_pkts.wrapping_sub(before.out_pkts),
        in_bytes: now.in_bytes.wrapping_sub(before.in_bytes),
        out_bytes: now.out_bytes.wrapping_sub(before.out_bytes),
    }
}

impl RateBook {
    /// Records that dest index `dest` belongs to service index `service`.
    pub fn own(&mut self, dest: u32, service: u32) {
        self.owner.insert(dest, service);
    }

    /// One estimator step at `now` with each dest's current counters.
    pub fn sample(&mut self, now: Timestamp, counters: &HashMap<u32, Counters>) {
        let mut by_service: HashMap<u32, Counters> = HashMap::new();
        for (dest, c) in counters {
            let stats = self.dests.entry(*dest).or_default();
            stats.record(delta(*c, stats.counters()));
            stats.estimate(now);
            if let Some(service) = self.owner.get(dest) {
                *by_service.entry(*service).or_default() += *c;
            }
        }
        for (service, c) in by_service {
            let stats = self.services.entry(service).or_default();
            stats.record(delta(c, stats.counters()));
            stats.estimate(now);
        }
    }

    /// A dest's rates.
    #[must_use]
    pub fn dest(&self, dest: u32) -> Rates {
        self.dests.get(&dest).map(Stats::rates).unwrap_or_default()
    }

    /// A service's rates.
    #[must_use]
    pub fn service(&self, service: u32) -> Rates {
        self.services
            .get(&service)
            .map(Stats::rates)
            .unwrap_or_default()
    }

    /// Forgets the counters and rates of these dests and of the services that own them
    /// (`-Z`, or a dest that joins anew); the program's counters are zeroed alongside.
    pub fn zero(&mut self, dests: &[u32]) {
        for dest in dests {
            if let Some(s) = self.dests.get_mut(dest) {
                *s = Stats::default();
            }
            if let Some(s) = self.owner.get(dest).and_then(|o| self.services.get_mut(o)) {
                *s = Stats::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_kernels_estimator_for_dests_and_their_services() {
        let mut book = RateBook::default();
        book.own(0, 7);
        book.own(1, 7);
        let at = |s: u64| Timestamp(s * 1000);
        let mut counts = HashMap::new();
        // 100 connections/s on dest 0, 50 on dest 1, for a minute of 2-second periods.
        for step in 0..=30u64 {
            counts.insert(
                0,
                Counters {
                    conns: 200 * step,
                    ..Counters::default()
                },
            );
            counts.insert(
                1,
                Counters {
                    conns: 100 * step,
                    ..Counters::default()
                },
            );
            book.sample(at(2 * step), &counts);
        }
        let reference = |per_period: u64| {
            let mut s = Stats::default();
            for step in 0..=30u64 {
                s.record(Counters {
                    conns: if step == 0 { 0 } else { per_period },
                    ..Counters::default()
                });
                s.estimate(at(2 * step));
            }
            s.rates()
        };
        assert_eq!(book.dest(0), reference(200));
        assert_eq!(book.dest(1), reference(100));
        assert_eq!(book.service(7), reference(300));
        assert!(book.service(7).cps >= 140, "{:?}", book.service(7));
        book.zero(&[0]);
        assert_eq!(book.dest(0).cps, 0);
        assert_eq!(book.service(7).cps, 0);
        assert_eq!(book.dest(1), reference(100), "other dests keep theirs");
    }
}
