//! Locality-based least connection with replication (ip_vs_lblcr.c): a destination address
//! maps to a set of dests; the least loaded member serves, and the set grows when that member
//! is overloaded (lblc's rule) and shrinks by its most loaded member once it has not changed for
//! the expiration time.
//!
//! Set members that were removed from the service are skipped (the kernel keeps them in its
//! trash, unavailable, until the set drops them).

use super::lblc::{locality_overloaded, wlc_pick};
use super::locality::{LocalityCache, DEFAULT_EXPIRATION_MS};
use super::{DestSet, Flow};
use crate::time::Timestamp;
use std::net::SocketAddr;

/// A dest set: members newest first, and when it last changed.
#[derive(Debug, Clone)]
pub struct DestSetEntry {
    members: Vec<(SocketAddr, u64)>,
    last_mod: Timestamp,
}

impl DestSetEntry {
    fn insert(&mut self, member: (SocketAddr, u64), now: Timestamp) {
        if !self.members.contains(&member) {
            self.members.insert(0, member);
            self.last_mod = now;
        }
    }

    /// `ip_vs_dest_set_min`: weighted least connection among available members.
    fn min(&self, set: DestSet<'_>) -> Option<usize> {
        let mut live = self.members.iter().filter_map(|&(a, g)| set.find(a, g));
        let mut least = live.find(|&i| set.dests[i].available())?;
        for i in live {
            let d = &set.dests[i];
            if d.overloaded {
                continue;
            }
            let (loh, doh) = (set.dests[least].overhead(), d.overhead());
            if loh * i64::from(d.weight()) > doh * i64::from(set.dests[least].weight()) {
                least = i;
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: the most loaded member with weight above 0.
    fn max(&self, set: DestSet<'_>) -> Option<usize> {
        let mut live = self.members.iter().filter_map(|&(a, g)| set.find(a, g));
        let mut most = live.find(|&i| set.dests[i].weight() > 0)?;
        for i in live {
            let d = &set.dests[i];
            let (moh, doh) = (set.dests[most].overhead(), d.overhead());
            if moh * i64::from(d.weight()) < doh * i64::from(set.dests[most].weight())
                && d.weight() > 0
            {
                most = i;
            }
        }
        Some(most)
    }
}

/// The cache: destination address -> dest set.
#[derive(Debug, Clone, Default)]
pub struct Lblcr {
    cache: LocalityCache<DestSetEntry>,
}

impl Lblcr {
    /// One pick for the flow's destination address.
    pub fn schedule(&mut self, set: DestSet<'_>, flow: &Flow, now: Timestamp) -> Option<usize> {
        let daddr = flow.local.ip();
        let Some(entry) = self.cache.get_mut(&daddr, now) else {
            let i = wlc_pick(set.dests)?;
            let member = (set.dests[i].addr(), set.dests[i].generation);
            let value = DestSetEntry {
                members: vec![member],
                last_mod: now,
            };
            self.cache.insert(daddr, value, now);
            return Some(i);
        };
        let entry = &mut entry.value;
        let least = entry.min(set);
        if entry.members.len() > 1 && now.0 > entry.last_mod.0 + DEFAULT_EXPIRATION_MS {
            if let Some(m) = entry.max(set) {
                let member = (set.dests[m].addr(), set.dests[m].generation);
                entry.members.retain(|x| *x != member);
                entry.last_mod = now;
            }
        }
        if let Some(i) = least {
            if !locality_overloaded(&set.dests[i], set.dests) {
                return Some(i);
            }
        }
        let i = wlc_pick(set.dests)?;
        entry.insert((set.dests[i].addr(), set.dests[i].generation), now);
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

    fn flow() -> Flow {
        Flow {
            client: "198.18.9.9:1000".parse().unwrap(),
            local: "198.18.0.10:80".parse().unwrap(),
        }
    }

    #[test]
    fn lblcr_grows_the_set_when_its_member_is_overloaded() {
        let mut d = dests(&[2, 2]);
        let mut s = Lblcr::default();
        let t = Timestamp::ZERO;
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), t),
            Some(0)
        );
        load(&mut d, &[(3, 0), (0, 0)]);
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), t),
            Some(1)
        );
        // Both are members now: the least loaded member serves.
        load(&mut d, &[(1, 0), (2, 0)]);
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), t),
            Some(0)
        );
        load(&mut d, &[(2, 0), (1, 0)]);
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), t),
            Some(1)
        );
    }

    #[test]
    fn lblcr_drops_the_most_loaded_member_after_the_expiration() {
        let mut d = dests(&[2, 2]);
        let mut s = Lblcr::default();
        s.schedule(DestSet::new(&d, &index(&d)), &flow(), Timestamp::ZERO);
        load(&mut d, &[(3, 0), (0, 0)]);
        s.schedule(DestSet::new(&d, &index(&d)), &flow(), Timestamp(1));
        load(&mut d, &[(2, 0), (1, 0)]);
        let late = Timestamp(DEFAULT_EXPIRATION_MS + 2);
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), late),
            Some(1)
        );
        // dest 0 left the set; with dest 1 now the busier, the set still answers dest 1 only.
        load(&mut d, &[(0, 0), (2, 0)]);
        assert_eq!(
            s.schedule(DestSet::new(&d, &index(&d)), &flow(), late),
            Some(1)
        );
    }
}
