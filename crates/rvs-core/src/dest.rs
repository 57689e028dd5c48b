//! A dest at run time: its configuration, connection counts, overload flag and stats.

use crate::config::DestConfig;
use crate::health::Health;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Connection counts of a dest, as `ipvsadm -L` and `--persistent-conn` show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnCounts {
    /// Connections in ESTABLISHED (`ActiveConn`).
    pub active: u32,
    /// Connections in any other state, and UDP flows (`InActConn`).
    pub inactive: u32,
    /// Persistence templates pointing at this dest (`PersistConn`).
    pub persistent: u32,
}

/// A dest of a service at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Its configuration.
    pub config: DestConfig,
    /// The latest non-zero weight; mh builds its table from it so quiescing does not reshuffle.
    pub last_weight: u32,
    /// Connection counts.
    pub conns: ConnCounts,
    /// Set while the upper threshold is reached (`IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: bool,
    /// Traffic counters and rates (boxed: schedulers scan dests, and a small `Dest` keeps
    /// that scan in cache).
    pub stats: Box<Stats>,
    /// What checks found (the runtime overlay; the planes' copies are always unchecked).
    pub health: Health,
    /// Tells this dest apart from an earlier dest with the same address that was removed.
    pub(crate) generation: u64,
}

impl Dest {
    pub(crate) fn new(config: DestConfig, generation: u64, health: Health) -> Self {
        Self {
            config,
            last_weight: config.weight,
            conns: ConnCounts::default(),
            overloaded: false,
            stats: Box::default(),
            health,
            generation,
        }
    }

    /// The dest's address and port.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.config.addr
    }

    /// The current weight.
    #[must_use]
    pub const fn weight(&self) -> u32 {
        self.config.weight
    }

    /// The kernel's `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns`.
    #[must_use]
    pub fn overhead(&self) -> i64 {
        (i64::from(self.conns.active) << 8) + i64::from(self.conns.inactive)
    }

    /// `activeconns + inactconns`, what the thresholds compare against.
    #[must_use]
    pub fn total_conns(&self) -> u64 {
        u64::from(self.conns.active) + u64::from(self.conns.inactive)
    }

    /// Whether a scheduler may pick it: weight above 0 and not overloaded.
    #[must_use]
    pub const fn available(&self) -> bool {
        self.config.weight > 0 && !self.overloaded
    }

    /// Applies an edit (`-e`), with the kernel's rules for `last_weight` and the overload flag.
    pub(crate) fn update(&mut self, config: DestConfig) {
        if config.weight != 0 {
            self.last_weight = config.weight;
        }
        if config.u_threshold == 0 || config.u_threshold > self.config.u_threshold {
            self.overloaded = false;
        }
        self.config = config;
    }

    /// Sets the overload flag after a connection was bound (`ip_vs_bind_dest`).
    pub(crate) fn check_overload_after_bind(&mut self) {
        let upper = u64::from(self.config.u_threshold);
        if upper != 0 && self.total_conns() >= upper {
            self.overloaded = true;
        }
    }

    /// Clears the overload flag after a connection was unbound (`ip_vs_unbind_dest`).
    pub(crate) fn check_overload_after_unbind(&mut self) {
        let (upper, lower) = (self.config.u_threshold, self.config.l_threshold);
        if overload_clears(self.total_conns(), upper, lower) {
            self.overloaded = false;
        }
    }
}

/// Whether `total` connections clear a dest's overload flag (`ip_vs_unbind_dest`): below the
/// lower threshold, or below 3/4 of the upper one when there is no lower threshold, or always
/// without thresholds. (The flag is set at `total >= upper` when a connection is bound.)
#[must_use]
pub fn overload_clears(total: u64, u_threshold: u32, l_threshold: u32) -> bool {
    let (upper, lower) = (u64::from(u_threshold), u64::from(l_threshold));
    if lower != 0 {
        total < lower
    } else if upper != 0 {
        total * 4 < upper * 3
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dest_fits_in_two_cache_lines() {
        assert!(
            std::mem::size_of::<super::Dest>() <= 128,
            "{}",
            std::mem::size_of::<super::Dest>()
        );
    }
}
