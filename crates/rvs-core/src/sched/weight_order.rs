//! The weight-ordered schedulers: fo and ovf (ip_vs_fo.c, ip_vs_ovf.c).

use crate::dest::Dest;

/// Weighted failover: the available dest with the highest weight; the first wins ties.
pub fn fo(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.overloaded && d.weight() > best.map_or(0, |(_, w)| w) {
            best = Some((i, d.weight()));
        }
    }
    best.map(|(i, _)| i)
}

/// Weighted overflow: the highest-weight available dest whose active connections do not exceed
/// its weight; when it fills up, traffic overflows to the next.
pub fn ovf(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        let w = d.weight();
        if d.overloaded || w == 0 || d.conns.active > w {
            continue;
        }
        if best.is_none_or(|b| w > dests[b].weight()) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::{dests, load};

    #[test]
    fn fo_takes_the_heaviest_available_dest() {
        let mut d = dests(&[5, 10, 10, 0]);
        assert_eq!(fo(&d), Some(1));
        d[1].overloaded = true;
        assert_eq!(fo(&d), Some(2));
        d[2].config.weight = 0;
        assert_eq!(fo(&d), Some(0));
    }

    #[test]
    fn ovf_overflows_when_active_exceeds_weight() {
        let mut d = dests(&[2, 5, 1]);
        load(&mut d, &[(0, 0), (5, 0), (0, 0)]);
        assert_eq!(ovf(&d), Some(1), "active == weight still takes more");
        load(&mut d, &[(0, 0), (6, 0), (0, 0)]);
        assert_eq!(ovf(&d), Some(0));
        load(&mut d, &[(3, 0), (6, 0), (2, 0)]);
        assert_eq!(ovf(&d), None);
    }
}
