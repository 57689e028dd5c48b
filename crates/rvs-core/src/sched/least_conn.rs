//! The connection-counting schedulers: lc, wlc, sed and nq (ip_vs_lc.c, ip_vs_wlc.c,
//! ip_vs_sed.c, ip_vs_nq.c).
//!
//! Each is the kernel's single linear scan in list order; ties keep the earlier dest. Weighted
//! comparisons cross-multiply in 64 bits (`loh * w_dest > doh * w_least`) as the kernel does,
//! so no division and no rounding. At 1000 dests a scan is a few hundred nanoseconds (see
//! docs/benchmarks.md), well inside the per-pick budget, so no index structure is kept.

use crate::dest::Dest;

/// Least connection: the smallest overhead among dests with weight above 0.
pub fn lc(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, i64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let doh = d.overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

/// The weighted scan shared by wlc and sed: the first available dest is the candidate, and a
/// later one replaces it when `loh * w_dest > doh * w_least`.
fn weighted_least(dests: &[Dest], overhead: impl Fn(&Dest) -> i64) -> Option<usize> {
    let first = dests.iter().position(Dest::available)?;
    let (mut least, mut loh) = (first, overhead(&dests[first]));
    let mut lw = i64::from(dests[first].weight());
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let (doh, dw) = (overhead(d), i64::from(d.weight()));
        if loh * dw > doh * lw {
            (least, loh, lw) = (i, doh, dw);
        }
    }
    Some(least)
}

/// Weighted least connection: the smallest overhead / weight.
pub fn wlc(dests: &[Dest]) -> Option<usize> {
    weighted_least(dests, Dest::overhead)
}

/// The shortest-expected-delay overhead: `activeconns + 1`; inactive connections do not count.
fn sed_overhead(d: &Dest) -> i64 {
    i64::from(d.conns.active) + 1
}

/// Shortest expected delay: the smallest `(active + 1) / weight`.
pub fn sed(dests: &[Dest]) -> Option<usize> {
    weighted_least(dests, sed_overhead)
}

/// Never queue: the first idle dest (no active connection) at once, otherwise sed.
pub fn nq(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, i64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        if d.conns.active == 0 {
            return Some(i);
        }
        let doh = sed_overhead(d);
        let replace = least.is_none_or(|(l, loh)| {
            loh * i64::from(d.weight()) > doh * i64::from(dests[l].weight())
        });
        if replace {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::{dests, load};

    #[test]
    fn lc_counts_an_active_connection_as_256_inactive_ones() {
        let mut d = dests(&[1, 1]);
        load(&mut d, &[(1, 0), (0, 255)]);
        assert_eq!(lc(&d), Some(1));
        load(&mut d, &[(1, 0), (0, 256)]);
        assert_eq!(lc(&d), Some(0), "a tie keeps the earlier dest");
    }

    #[test]
    fn lc_ignores_weight_but_skips_quiesced_dests() {
        let mut d = dests(&[1, 100, 0]);
        load(&mut d, &[(1, 0), (2, 0), (0, 0)]);
        assert_eq!(lc(&d), Some(0));
    }

    #[test]
    fn wlc_prefers_lowest_overhead_per_weight() {
        let mut d = dests(&[1, 3, 2]);
        // overheads 256, 512, 512: ratios 256, 170.7, 256.
        load(&mut d, &[(1, 0), (2, 0), (2, 0)]);
        assert_eq!(wlc(&d), Some(1));
    }

    #[test]
    fn wlc_skips_overloaded_dests_even_as_first_candidate() {
        let mut d = dests(&[1, 1]);
        d[0].overloaded = true;
        load(&mut d, &[(0, 0), (9, 9)]);
        assert_eq!(wlc(&d), Some(1));
    }

    #[test]
    fn sed_ignores_inactive_connections() {
        let mut d = dests(&[1, 1]);
        load(&mut d, &[(1, 0), (0, 1000)]);
        assert_eq!(sed(&d), Some(1));
        assert_eq!(wlc(&d), Some(0));
    }

    #[test]
    fn sed_weighs_the_next_connection() {
        let mut d = dests(&[1, 2]);
        // (0+1)/1 = 1 versus (1+1)/2 = 1: tie keeps the first.
        load(&mut d, &[(0, 0), (1, 0)]);
        assert_eq!(sed(&d), Some(0));
        load(&mut d, &[(1, 0), (1, 0)]);
        assert_eq!(sed(&d), Some(1));
    }

    #[test]
    fn nq_takes_the_first_idle_dest_regardless_of_weight() {
        let mut d = dests(&[10, 1, 1]);
        load(&mut d, &[(1, 0), (3, 0), (0, 50)]);
        assert_eq!(nq(&d), Some(2));
        load(&mut d, &[(5, 0), (3, 0), (1, 0)]);
        assert_eq!(
            nq(&d),
            Some(0),
            "no idle dest: sed decides, 6/10 beats 4/1 and 2/1"
        );
    }
}
