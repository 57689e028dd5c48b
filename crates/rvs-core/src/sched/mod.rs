//! The 14 IPVS schedulers, each with the kernel's decisions for the same dest states.
//!
//! Every scheduler walks the service's dests in the kernel's list order: newest first, since
//! `__ip_vs_update_dest` links a new dest at the head. A scheduler never picks a dest with weight
//! 0 or with the overload flag set, except where the kernel itself does otherwise (lblc and lblcr
//! keep a cached dest whose threshold flag is set; see their modules).
//!
//! Schedulers keep their own state (cursors, hash tables, caches) and are told about dest
//! changes through [`Scheduler::dest_added`], [`Scheduler::dest_removed`] and
//! [`Scheduler::dests_changed`]; wrr's mark follows each change at once, hash tables are
//! rebuilt lazily on the next pick.

mod hash;
mod lblc;
mod lblcr;
mod least_conn;
mod locality;
mod mh;
mod rr;
mod twos;
mod weight_order;
mod wrr;

pub use hash::hash_32;
pub use mh::{populate as mh_table, MH_TABLE_SIZE};

use crate::config::{SchedFlags, SchedulerKind};
use crate::dest::Dest;
use crate::time::Timestamp;
use rand_core::RngCore;
use std::net::SocketAddr;

/// The packet (or connection) a scheduler decides for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The client's address and port (the packet's source).
    pub client: SocketAddr,
    /// The address and port the client reached (the packet's destination: the VIP, or the
    /// original destination for fwmark services). dh, lblc and lblcr hash on its address.
    pub local: SocketAddr,
}

/// Dest positions by address. Operators choose dest addresses, so the fast non-keyed Fx hash
/// is safe here (client-keyed maps keep std's SipHash).
pub type DestIndex = rustc_hash::FxHashMap<SocketAddr, usize>;

/// The service's dests in kernel order, with an index by address.
#[derive(Debug, Clone, Copy)]
pub struct DestSet<'a> {
    /// Dests in kernel list order (head first).
    pub dests: &'a [Dest],
    index: &'a DestIndex,
}

impl<'a> DestSet<'a> {
    pub(crate) const fn new(dests: &'a [Dest], index: &'a DestIndex) -> Self {
        Self { dests, index }
    }

    /// The position of the dest with this address and generation, if it still exists.
    pub(crate) fn find(&self, addr: SocketAddr, generation: u64) -> Option<usize> {
        self.index
            .get(&addr)
            .copied()
            .filter(|&i| self.dests[i].generation == generation)
    }
}

/// The lookup of the hashing schedulers with the kernel's fallback (`ip_vs_sh_get_fallback`,
/// `ip_vs_mh_get_fallback`): the slot `ihash` if its dest is available; otherwise, when
/// `fallback` is set, the first available dest among the slots `bucket(offset)` for offsets
/// `ihash, ihash+1, ...` (mod the table size); an empty slot ends the search.
pub(crate) fn lookup_with_fallback(
    table: &[Option<u32>],
    dests: &[Dest],
    ihash: usize,
    fallback: bool,
    bucket: impl Fn(u32) -> usize,
) -> Option<usize> {
    let first = table[ihash]? as usize;
    if dests[first].available() {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    let size = table.len();
    for offset in 0..size {
        let roffset = u32::try_from((offset + ihash) % size).unwrap_or(0);
        let i = table[bucket(roffset)]? as usize;
        if dests[i].available() {
            return Some(i);
        }
    }
    None
}

/// What one pick needs besides the dests.
pub(crate) struct Input<'a> {
    pub flow: &'a Flow,
    pub flags: SchedFlags,
    pub now: Timestamp,
    pub rng: &'a mut dyn RngCore,
}

/// A scheduler and its state.
#[derive(Debug, Clone)]
pub enum Scheduler {
    /// Round robin.
    Rr(rr::Rr),
    /// Weighted round robin.
    Wrr(wrr::Wrr),
    /// Least connection.
    Lc,
    /// Weighted least connection.
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Locality-based least connection.
    Lblc(lblc::Lblc),
    /// Locality-based least connection with replication.
    Lblcr(lblcr::Lblcr),
    /// Destination hashing.
    Dh(hash::Dh),
    /// Source hashing.
    Sh(hash::Sh),
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh(mh::Mh),
    /// Power of two choices.
    Twos,
    /// No scheduler: never picks.
    None,
}

impl Scheduler {
    /// A fresh scheduler of this kind for a service whose dests are `dests` (none for a new
    /// service; the current ones when `-E` changes the scheduler), as `init_service` makes it.
    #[must_use]
    pub fn new(kind: SchedulerKind, dests: &[Dest]) -> Self {
        match kind {
            SchedulerKind::Rr => Self::Rr(rr::Rr::default()),
            SchedulerKind::Wrr => Self::Wrr(wrr::Wrr::init(dests)),
            SchedulerKind::Lc => Self::Lc,
            SchedulerKind::Wlc => Self::Wlc,
            SchedulerKind::Sed => Self::Sed,
            SchedulerKind::Nq => Self::Nq,
            SchedulerKind::Lblc => Self::Lblc(lblc::Lblc::default()),
            SchedulerKind::Lblcr => Self::Lblcr(lblcr::Lblcr::default()),
            SchedulerKind::Dh => Self::Dh(hash::Dh::default()),
            SchedulerKind::Sh => Self::Sh(hash::Sh::default()),
            SchedulerKind::Fo => Self::Fo,
            SchedulerKind::Ovf => Self::Ovf,
            SchedulerKind::Mh => Self::Mh(mh::Mh::default()),
            SchedulerKind::Twos => Self::Twos,
            SchedulerKind::None => Self::None,
        }
    }

    /// The most dests this scheduler can hold, if limited (mh: one per table slot).
    #[must_use]
    pub const fn dest_limit(kind: SchedulerKind) -> Option<usize> {
        match kind {
            SchedulerKind::Mh => Some(MH_TABLE_SIZE),
            _ => None,
        }
    }

    /// A dest was linked at the head of the list (position 0); `dests` is the list after it
    /// (`add_dest`).
    pub fn dest_added(&mut self, dests: &[Dest]) {
        match self {
            Self::Rr(s) => s.dest_added(),
            _ => self.dests_changed(dests),
        }
    }

    /// The dest at `index` was unlinked; `dests` is the list after it (`del_dest`).
    pub fn dest_removed(&mut self, index: usize, dests: &[Dest]) {
        match self {
            Self::Rr(s) => s.dest_removed(index),
            _ => self.dests_changed(dests),
        }
    }

    /// A dest's weight or flags changed (`upd_dest`), or dests were added or removed. wrr's
    /// mark follows at once, as the kernel's hook runs on every change (its current weight
    /// carries over); the hashing schedulers' tables depend only on the current dests, so
    /// they are rebuilt on the next pick.
    pub fn dests_changed(&mut self, dests: &[Dest]) {
        match self {
            Self::Wrr(s) => s.dest_changed(dests),
            Self::Dh(s) => s.mark_dirty(),
            Self::Sh(s) => s.mark_dirty(),
            Self::Mh(s) => s.mark_dirty(),
            _ => {}
        }
    }

    /// Picks a dest for a new connection, or `None` when no dest is available.
    pub(crate) fn schedule(&mut self, set: DestSet<'_>, input: Input<'_>) -> Option<usize> {
        let dests = set.dests;
        match self {
            Self::Rr(s) => s.schedule(dests),
            Self::Wrr(s) => s.schedule(dests),
            Self::Lc => least_conn::lc(dests),
            Self::Wlc => least_conn::wlc(dests),
            Self::Sed => least_conn::sed(dests),
            Self::Nq => least_conn::nq(dests),
            Self::Lblc(s) => s.schedule(set, input.flow, input.now),
            Self::Lblcr(s) => s.schedule(set, input.flow, input.now),
            Self::Dh(s) => s.schedule(dests, input.flow),
            Self::Sh(s) => s.schedule(dests, input.flow, input.flags),
            Self::Fo => weight_order::fo(dests),
            Self::Ovf => weight_order::ovf(dests),
            Self::Mh(s) => s.schedule(dests, input.flow, input.flags),
            Self::Twos => twos::twos(dests, input.rng),
            Self::None => None,
        }
    }

    /// Expires idle cache entries (lblc, lblcr), as the kernel's periodic timers do.
    pub fn expire(&mut self, now: Timestamp) {
        match self {
            Self::Lblc(s) => s.expire(now),
            Self::Lblcr(s) => s.expire(now),
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers to build dest lists for scheduler tests.
    use super::*;
    use crate::config::{DestConfig, ForwardMethod};

    /// Dests in kernel order with these weights, at 10.0.0.1, 10.0.0.2, ... (list position + 1).
    pub fn dests(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let addr = SocketAddr::from(([10, 0, 0, u8::try_from(i + 1).unwrap()], 80));
                Dest::new(
                    DestConfig::new(addr, ForwardMethod::Masq).with_weight(w),
                    i as u64,
                    crate::health::Health::Unchecked,
                )
            })
            .collect()
    }

    /// Sets active and inactive counts.
    pub fn load(dests: &mut [Dest], conns: &[(u32, u32)]) {
        for (d, &(a, i)) in dests.iter_mut().zip(conns) {
            d.conns.active = a;
            d.conns.inactive = i;
        }
    }

    /// The index of a dest list.
    pub fn index(dests: &[Dest]) -> DestIndex {
        dests
            .iter()
            .enumerate()
            .map(|(i, d)| (d.addr(), i))
            .collect()
    }
}
