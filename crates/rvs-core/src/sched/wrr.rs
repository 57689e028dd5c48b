//! Weighted round robin (ip_vs_wrr.c): passes over the list at decreasing current weights.
//!
//! `mw` is the largest weight less `gcd - 1`, `di` the gcd of the positive weights, `cw` the
//! current weight. A pass picks, in list order, every dest whose weight is at least `cw`; at the
//! end of the list `cw` drops by `di`, and below 1 it restarts at `mw`. One cycle therefore has
//! `mw/di` passes and gives each dest `weight/di` picks, heavier dests first.

use crate::dest::Dest;

/// The kernel's `ip_vs_wrr_mark`.
#[derive(Debug, Clone, Default)]
pub struct Wrr {
    /// The last pick; `None` is the list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `ip_vs_wrr_gcd_weight` (1 when no dest has a positive weight) and
/// `ip_vs_wrr_max_weight` (over every dest, 0 for none).
fn gcd_and_max(dests: &[Dest]) -> (i64, i64) {
    let weights = dests.iter().map(|d| i64::from(d.weight()));
    let di = weights.clone().filter(|&w| w > 0).reduce(gcd).unwrap_or(1);
    (di, weights.max().unwrap_or(0).max(0))
}

impl Wrr {
    /// `ip_vs_wrr_init_svc`: the mark of a service that gets wrr with these dests.
    #[must_use]
    pub fn init(dests: &[Dest]) -> Self {
        let (di, max) = gcd_and_max(dests);
        let mw = max - (di - 1);
        Self {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// `ip_vs_wrr_dest_changed`, run on every add, edit and delete: back to the head,
    /// recompute `di` and `mw`, and keep `cw` in range and aligned to the new gcd.
    pub fn dest_changed(&mut self, dests: &[Dest]) {
        let (di, max) = gcd_and_max(dests);
        self.cl = None;
        self.di = di;
        self.mw = max - (di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if di > 1 {
            self.cw = (self.cw / di) * di + 1;
        }
    }

    /// One pick, following `ip_vs_wrr_schedule` step by step.
    pub fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        if self.mw <= 0 {
            return None;
        }
        let last = self.cl;
        let mut start = self.cl.map_or(0, |c| c + 1);
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            for (i, d) in dests.iter().enumerate().skip(start) {
                if !d.overloaded && i64::from(d.weight()) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            start = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::dests;

    fn run(weights: &[u32], n: usize) -> Vec<usize> {
        let d = dests(weights);
        let mut w = Wrr::init(&d);
        (0..n).map(|_| w.schedule(&d).unwrap()).collect()
    }

    #[test]
    fn wrr_with_weights_4_3_2_follows_the_kernel_sequence() {
        // List order A(4) B(3) C(2): passes at cw = 4, 3, 2, 1.
        assert_eq!(
            run(&[4, 3, 2], 18),
            [0, 0, 1, 0, 1, 2, 0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 1, 2]
        );
    }

    #[test]
    fn wrr_current_weight_carries_over_every_dest_change() {
        // Empty at init (cw = mw = 0); each add runs dest_changed: after A(4) cw = 1 (the
        // `!cw` rule), and B(3), C(2) keep it, so the first pass is at cw 1: C B A.
        let mut w = Wrr::init(&[]);
        let all = dests(&[2, 3, 4]);
        for k in (0..3).rev() {
            w.dest_changed(&all[k..]);
        }
        let picks: Vec<_> = (0..9).map(|_| w.schedule(&all).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 2, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn wrr_steps_by_the_gcd_of_the_weights() {
        // gcd 2: mw = 6 - 1 = 5, passes at cw = 5, 3, 1.
        assert_eq!(run(&[6, 4, 2], 6), [0, 0, 1, 0, 1, 2]);
    }

    #[test]
    fn wrr_skips_overloaded_and_quiesced_dests() {
        let mut d = dests(&[3, 0, 1]);
        d[0].overloaded = true;
        let mut w = Wrr::init(&d);
        let picks: Vec<_> = (0..3).map(|_| w.schedule(&d)).collect();
        assert_eq!(picks, [Some(2), Some(2), Some(2)]);
    }

    #[test]
    fn wrr_with_no_positive_weight_picks_nothing() {
        let d = dests(&[0, 0]);
        let mut w = Wrr::init(&d);
        assert_eq!(w.schedule(&d), None);
    }

    #[test]
    fn wrr_gives_up_after_a_full_pass_when_all_are_overloaded() {
        let mut d = dests(&[2, 1]);
        let mut w = Wrr::init(&d);
        assert_eq!(w.schedule(&d), Some(0));
        for x in &mut d {
            x.overloaded = true;
        }
        assert_eq!(w.schedule(&d), None);
        for x in &mut d {
            x.overloaded = false;
        }
        assert!(w.schedule(&d).is_some());
    }
}
