//! The destination-address cache shared by lblc and lblcr, with the kernel's expiry timers.
//!
//! Every 60 s a check runs (`ip_vs_lbl{c,cr}_check_expire`). Every 30th check is a full check
//! that drops entries unused for the expiration time (sysctl `lbl{c,cr}_expiration`, 24 h by
//! default). The other checks act only when the cache holds more than 16 entries per bucket
//! (16 x 1024): they drop entries unused for 6 minutes, at most `(entries - max) * 4/3`. New
//! entries are refused at 1.5 x max. Checks that were missed while no one called
//! [`LocalityCache::expire`] are run when it is called.

use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

/// Time between two expiry checks.
const CHECK_INTERVAL_MS: u64 = 60_000;
/// Idle time after which an entry may go when the cache is over its size.
const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;
/// Every this many checks, a full expiry check runs.
const CHECKS_PER_FULL: u32 = 30;
/// The default `lblc_expiration` / `lblcr_expiration`: 24 hours.
pub const DEFAULT_EXPIRATION_MS: u64 = 24 * 3_600_000;
/// Entries above which the periodic check trims (`IP_VS_LBLC_TAB_SIZE * 16`).
const MAX_SIZE: usize = 1024 * 16;

/// One cached destination address.
#[derive(Debug, Clone)]
pub struct Entry<V> {
    /// What is cached (a dest, or a set of dests).
    pub value: V,
    /// When the entry was last used.
    pub last_use: Timestamp,
}

/// A cache keyed by the packet's destination address.
#[derive(Debug, Clone)]
pub struct LocalityCache<V> {
    entries: HashMap<IpAddr, Entry<V>>,
    counter: u32,
    next_check: Option<Timestamp>,
    expiration_ms: u64,
}

impl<V> Default for LocalityCache<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            counter: 1,
            next_check: None,
            expiration_ms: DEFAULT_EXPIRATION_MS,
        }
    }
}

impl<V> LocalityCache<V> {
    /// The entry for an address, marked as used now.
    pub fn get_mut(&mut self, addr: &IpAddr, now: Timestamp) -> Option<&mut Entry<V>> {
        let e = self.entries.get_mut(addr)?;
        e.last_use = now;
        Some(e)
    }

    /// Stores an entry, unless the cache is full (1.5 x its size), as `ip_vs_lbl*_new` does.
    pub fn insert(&mut self, addr: IpAddr, value: V, now: Timestamp) {
        if !self.entries.contains_key(&addr) && self.entries.len() >= MAX_SIZE * 3 / 2 {
            return;
        }
        self.entries.insert(
            addr,
            Entry {
                value,
                last_use: now,
            },
        );
    }

    /// How many addresses are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Runs the periodic checks due by `now`.
    pub fn expire(&mut self, now: Timestamp) {
        let Some(mut next) = self.next_check else {
            self.next_check = Some(Timestamp(now.0 + CHECK_INTERVAL_MS));
            return;
        };
        if next > now {
            return;
        }
        // Only the last full cycle of due checks can change the outcome: skip the older ones,
        // keeping the counter's phase so full checks fall where the kernel's would.
        let due = (now.0 - next.0) / CHECK_INTERVAL_MS + 1;
        let keep = u64::from(CHECKS_PER_FULL) + 1;
        if due > keep {
            let skipped = due - keep;
            next = Timestamp(next.0 + skipped * CHECK_INTERVAL_MS);
            let phase = (u64::from(self.counter) - 1 + skipped) % u64::from(CHECKS_PER_FULL);
            self.counter = u32::try_from(phase).unwrap_or(0) + 1;
        }
        while next <= now {
            self.check(next);
            next = Timestamp(next.0 + CHECK_INTERVAL_MS);
        }
        self.next_check = Some(next);
    }

    fn check(&mut self, now: Timestamp) {
        if self.counter.is_multiple_of(CHECKS_PER_FULL) {
            let expiration = self.expiration_ms;
            self.entries
                .retain(|_, e| e.last_use.0 + expiration > now.0);
            self.counter = 1;
            return;
        }
        if self.entries.len() <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let goal = ((self.entries.len() - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
        let stale: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.last_use.0 + ENTRY_TIMEOUT_MS <= now.0)
            .map(|(a, _)| *a)
            .take(goal)
            .collect();
        for a in stale {
            self.entries.remove(&a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_check_drops_entries_idle_past_the_expiration() {
        let mut c = LocalityCache::default();
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        c.expire(Timestamp::ZERO);
        c.insert(a, 1, Timestamp::ZERO);
        c.expire(Timestamp(29 * 60_000));
        assert_eq!(c.len(), 1, "no full check before the 30th");
        c.expire(Timestamp(DEFAULT_EXPIRATION_MS + 60 * 60_000));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn used_entries_survive_the_full_check() {
        let mut c = LocalityCache::default();
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        c.expire(Timestamp::ZERO);
        c.insert(a, 1, Timestamp::ZERO);
        let late = Timestamp(DEFAULT_EXPIRATION_MS);
        assert!(c.get_mut(&a, late).is_some());
        c.expire(Timestamp(late.0 + 31 * 60_000));
        assert_eq!(c.len(), 1);
    }
}
