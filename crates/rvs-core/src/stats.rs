//! Traffic counters and the kernel's rate estimator (ip_vs_est.c).
//!
//! The estimator runs every 2 seconds and keeps exponentially smoothed rates with the kernel's
//! fixed-point scaling: connections and packets scaled by 2^10, bytes by 2^5, each new sample
//! weighted 1/4. Reading rounds the same way `ip_vs_read_estimator` does, so `--rate` shows the
//! numbers the kernel would for the same traffic.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::ops::AddAssign;

/// The estimator's period: 2 seconds, as in the kernel.
pub const ESTIMATOR_PERIOD_MS: u64 = 2000;
/// After this many idle periods every rate has decayed to zero, so older ones need no replay.
const MAX_CATCH_UP_PERIODS: u64 = 64;

/// Cumulative traffic counters of a service or dest (what `--stats` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets from clients.
    pub in_pkts: u64,
    /// Packets to clients.
    pub out_pkts: u64,
    /// Bytes from clients.
    pub in_bytes: u64,
    /// Bytes to clients.
    pub out_bytes: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Self) {
        self.conns = self.conns.wrapping_add(o.conns);
        self.in_pkts = self.in_pkts.wrapping_add(o.in_pkts);
        self.out_pkts = self.out_pkts.wrapping_add(o.out_pkts);
        self.in_bytes = self.in_bytes.wrapping_add(o.in_bytes);
        self.out_bytes = self.out_bytes.wrapping_add(o.out_bytes);
    }
}

/// Rates per second, rounded as the kernel reports them (what `--rate` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second from clients.
    pub in_pps: u64,
    /// Packets per second to clients.
    pub out_pps: u64,
    /// Bytes per second from clients.
    pub in_bps: u64,
    /// Bytes per second to clients.
    pub out_bps: u64,
}

/// The smoothed, scaled rates and the counters seen at the last period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Estimator {
    last: Counters,
    cps: i64,
    in_pps: i64,
    out_pps: i64,
    in_bps: i64,
    out_bps: i64,
    next_period: Option<Timestamp>,
}

/// One smoothing step: `avg += (sample - avg) / 4`, in the kernel's signed arithmetic.
fn smooth(avg: &mut i64, now: u64, last: u64, shift: u32) {
    #[expect(
        clippy::cast_possible_wrap,
        reason = "the kernel does the same signed conversion"
    )]
    let sample = (now.wrapping_sub(last) << shift) as i64;
    *avg += (sample - *avg) >> 2;
}

/// Rounds a scaled rate the way `ip_vs_read_estimator` does.
fn read(avg: i64, round: i64, shift: u32) -> u64 {
    u64::try_from((avg + round) >> shift).unwrap_or(0)
}

impl Estimator {
    fn period(&mut self, c: &Counters) {
        smooth(&mut self.cps, c.conns, self.last.conns, 9);
        smooth(&mut self.in_pps, c.in_pkts, self.last.in_pkts, 9);
        smooth(&mut self.out_pps, c.out_pkts, self.last.out_pkts, 9);
        smooth(&mut self.in_bps, c.in_bytes, self.last.in_bytes, 4);
        smooth(&mut self.out_bps, c.out_bytes, self.last.out_bytes, 4);
        self.last = *c;
    }
}

/// Counters plus their rate estimator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    counters: Counters,
    est: Estimator,
}

impl Stats {
    /// The cumulative counters.
    #[must_use]
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// Adds traffic to the counters.
    pub fn record(&mut self, delta: Counters) {
        self.counters += delta;
    }

    /// Takes back one connection counted by mistake (one that never reached its dest), so
    /// `Conns` counts connections, not attempts. The rate sees no negative step.
    pub fn uncount_conn(&mut self) {
        self.counters.conns = self.counters.conns.saturating_sub(1);
        self.est.last.conns = self.est.last.conns.min(self.counters.conns);
    }

    /// Runs every estimator period that has ended by `now`. The first call starts the clock.
    pub fn estimate(&mut self, now: Timestamp) {
        let Some(next) = self.est.next_period else {
            self.est.next_period = Some(Timestamp(now.0 + ESTIMATOR_PERIOD_MS));
            self.est.last = self.counters;
            return;
        };
        if now < next {
            return;
        }
        let periods = (now.0 - next.0) / ESTIMATOR_PERIOD_MS + 1;
        for _ in 0..periods.min(MAX_CATCH_UP_PERIODS) {
            self.est.period(&self.counters);
        }
        self.est.next_period = Some(Timestamp(next.0 + periods * ESTIMATOR_PERIOD_MS));
    }

    /// The current rates, rounded as the kernel reads them.
    #[must_use]
    pub fn rates(&self) -> Rates {
        Rates {
            cps: read(self.est.cps, 0x1FF, 10),
            in_pps: read(self.est.in_pps, 0x1FF, 10),
            out_pps: read(self.est.out_pps, 0x1FF, 10),
            in_bps: read(self.est.in_bps, 0xF, 5),
            out_bps: read(self.est.out_bps, 0xF, 5),
        }
    }

    /// Zeroes counters and rates (`-Z`), keeping the estimator's clock.
    pub fn zero(&mut self) {
        self.counters = Counters::default();
        let next = self.est.next_period;
        self.est = Estimator {
            next_period: next,
            ..Estimator::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(stats: &mut Stats, per_period: Counters, periods: u64) {
        for i in 1..=periods {
            stats.record(per_period);
            stats.estimate(Timestamp(i * ESTIMATOR_PERIOD_MS));
        }
    }

    #[test]
    fn steady_traffic_converges_to_its_rate() {
        let mut s = Stats::default();
        s.estimate(Timestamp::ZERO);
        let per = Counters {
            conns: 200,
            in_pkts: 2000,
            out_pkts: 1000,
            in_bytes: 2_000_000,
            out_bytes: 64,
        };
        steady(&mut s, per, 60);
        assert_eq!(
            s.rates(),
            Rates {
                cps: 100,
                in_pps: 1000,
                out_pps: 500,
                in_bps: 1_000_000,
                out_bps: 32
            }
        );
    }

    #[test]
    fn first_period_shows_a_quarter_of_the_rate() {
        // avg = (sample - 0) >> 2, sample = 200 << 9; read = (avg + 0x1FF) >> 10 = 25.
        let mut s = Stats::default();
        s.estimate(Timestamp::ZERO);
        steady(
            &mut s,
            Counters {
                conns: 200,
                ..Counters::default()
            },
            1,
        );
        assert_eq!(s.rates().cps, 25);
    }

    #[test]
    fn idle_periods_decay_rates_to_zero() {
        let mut s = Stats::default();
        s.estimate(Timestamp::ZERO);
        steady(
            &mut s,
            Counters {
                conns: 200,
                ..Counters::default()
            },
            10,
        );
        s.estimate(Timestamp(1_000_000));
        assert_eq!(s.rates(), Rates::default());
    }

    #[test]
    fn zero_clears_counters_and_rates() {
        let mut s = Stats::default();
        s.estimate(Timestamp::ZERO);
        steady(
            &mut s,
            Counters {
                conns: 5,
                in_bytes: 100,
                ..Counters::default()
            },
            5,
        );
        s.zero();
        assert_eq!(s.counters(), Counters::default());
        assert_eq!(s.rates(), Rates::default());
        s.record(Counters {
            conns: 2,
            ..Counters::default()
        });
        s.estimate(Timestamp(6 * ESTIMATOR_PERIOD_MS));
        assert_eq!(
            s.rates().cps,
            0,
            "2 conns in one period: (1024 >> 2) + 0x1FF < 1024"
        );
    }
}
