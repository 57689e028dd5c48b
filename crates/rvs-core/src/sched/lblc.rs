//! Locality-based least connection (ip_vs_lblc.c): a destination address keeps its dest until
//! that dest is overloaded in lblc's sense, then wlc picks a new one.
//!
//! As in the kernel, the cached dest is reused when its weight is above 0 and it is not
//! "overloaded" by lblc's rule (more active connections than its weight while some dest has
//! fewer than half its weight active); the threshold flag (`-x`) is not consulted for a cached
//! dest, only when a new dest is picked.

use super::locality::LocalityCache;
use super::{DestSet, Flow};
use crate::dest::Dest;
use crate::time::Timestamp;

/// lblc's overload rule (`is_overloaded` in ip_vs_lblc.c and ip_vs_lblcr.c).
pub fn locality_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    dest.conns.active > dest.weight()
        && dests
            .iter()
            .any(|d| u64::from(d.conns.active) * 2 < u64::from(d.weight()))
}

/// The weighted least-connection pick lblc and lblcr fall back to (`__ip_vs_lblc_schedule`).
pub fn wlc_pick(dests: &[Dest]) -> Option<usize> {
    super::least_conn::wlc(dests)
}

/// The cache: destination address -> (dest address, dest generation).
#[derive(Debug, Clone, Default)]
pub struct Lblc {
    cache: LocalityCache<(std::net::SocketAddr, u64)>,
}

impl Lblc {
    /// One pick for the flow's destination address.
    pub fn schedule(&mut self, set: DestSet<'_>, flow: &Flow, now: Timestamp) -> Option<usize> {
        let daddr = flow.local.ip();
        if let Some(entry) = self.cache.get_mut(&daddr, now) {
            let (addr, generation) = entry.value;
            if let Some(i) = set.find(addr, generation) {
                let d = &set.dests[i];
                if d.weight() > 0 && !locality_overloaded(d, set.dests) {
                    return Some(i);
                }
            }
        }
        let i = wlc_pick(set.dests)?;
        let d = &set.dests[i];
        self.cache.insert(daddr, (d.addr(), d.generation), now);
        Some(i)
    }

    /// Runs the cache's expiry checks.
    pub fn expire(&mut self, now: Timestamp) {
        self.cache.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::{dests, index, load};

    fn flow(local: &str) -> Flow {
        Flow {
            client: "198.18.9.9:1000".parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    #[test]
    fn lblc_keeps_a_destination_address_on_its_dest() {
        let mut d = dests(&[2, 2]);
        let mut s = Lblc::default();
        let f = flow("198.18.0.10:80");
        let first = s
            .schedule(DestSet::new(&d, &index(&d)), &f, Timestamp::ZERO)
            .unwrap();
        load(
            &mut d,
            if first == 0 {
                &[(2, 0), (0, 0)]
            } else {
                &[(0, 0), (2, 0)]
            },
        );
        let again = s
            .schedule(DestSet::new(&d, &index(&d)), &f, Timestamp(1))
            .unwrap();
        assert_eq!(again, first, "active == weight is not overloaded");
    }

    #[test]
    fn lblc_moves_when_its_dest_exceeds_its_weight_and_another_is_half_idle() {
        let mut d = dests(&[2, 4]);
        let mut s = Lblc::default();
        let f = flow("198.18.0.10:80");
        let mut pick = |d: &[Dest], t| s.schedule(DestSet::new(d, &index(d)), &f, Timestamp(t));
        assert_eq!(pick(&d, 0), Some(0), "wlc: a tie keeps the first dest");
        load(&mut d, &[(3, 0), (1, 0)]);
        assert_eq!(
            pick(&d, 1),
            Some(1),
            "3 > 2 and dest 1 is under half its weight"
        );
        load(&mut d, &[(3, 0), (5, 0)]);
        assert_eq!(
            pick(&d, 2),
            Some(1),
            "no dest is half idle, so dest 1 keeps the address"
        );
        load(&mut d, &[(0, 0), (5, 0)]);
        assert_eq!(pick(&d, 3), Some(0));
        assert_eq!(pick(&d, 4), Some(0));
    }

    #[test]
    fn lblc_reschedules_when_the_cached_dest_is_quiesced() {
        let mut d = dests(&[1, 1]);
        let mut s = Lblc::default();
        let f = flow("198.18.0.10:80");
        let first = s
            .schedule(DestSet::new(&d, &index(&d)), &f, Timestamp::ZERO)
            .unwrap();
        d[first].config.weight = 0;
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &f, Timestamp(1)),
            Some(1 - first)
        );
    }
}
