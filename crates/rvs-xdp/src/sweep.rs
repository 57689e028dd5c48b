//! The connection table's sweeper: what the kernel's connection timers do for IPVS.
//!
//! The program counts each dest's connections as it creates them, sees their state change and
//! finds them expired (`rvs_counts`, which lc, wlc, sed and nq read), but it never sees a flow
//! that went idle without another packet, nor one the LRU map evicted. The sweeper deletes
//! expired entries and rewrites every dest's counts from what is left, so the counts are exact
//! after each sweep and drift by at most what happens during one period. Each sweep also feeds
//! the per-CPU traffic counters to the rate estimators ([`crate::rates`]), whose period (2 s)
//! is the sweep's. It works on its own handles to the maps (`MapData::from_id`), so it runs on
//! a thread beside the plane.

use rvs_bpf_abi as abi;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use std::collections::HashMap;

/// Handles to the maps a sweep reads and writes.
pub struct Sweeper {
    conns: BpfHashMap<MapData, abi::ConnKey, abi::Conn>,
    conns4: BpfHashMap<MapData, abi::ConnKey4, abi::Conn>,
    counts: Array<MapData, abi::Count>,
    config: Array<MapData, abi::Config>,
    dest_map: Array<MapData, abi::Dest>,
    stats: PerCpuArray<MapData, abi::Stat>,
    dests: Arc<AtomicU32>,
    rates: crate::rates::SharedRates,
}

/// The kernel ids of the maps a sweeper opens.
pub(crate) struct MapIds {
    pub conns: u32,
    pub conns4: u32,
    pub counts: u32,
    pub config: u32,
    pub dests: u32,
    pub stats: u32,
}

/// IPVS's overload flag for `count` connections: set at or above the upper threshold, cleared
/// as `ip_vs_unbind_dest` clears it, else as it `was`.
fn overloaded(count: &abi::Count, dest: &abi::Dest, was: bool) -> bool {
    let total = u64::try_from(i64::from(count.active) + i64::from(count.inactive)).unwrap_or(0);
    if dest.u_threshold != 0 && total >= u64::from(dest.u_threshold) {
        return true;
    }
    was && !rvs_core::dest::overload_clears(total, dest.u_threshold, dest.l_threshold)
}

/// Deletes one connection map's expired entries and adds its live ones to their dests'
/// `counts`; returns (expired, live).
fn sweep_conns<K: aya::Pod>(
    conns: &mut BpfHashMap<MapData, K, abi::Conn>,
    now_ns: u64,
    config: &abi::Config,
    counts: &mut [abi::Count],
) -> (usize, usize) {
    let mut expired = Vec::new();
    let mut live = 0;
    for entry in conns.iter() {
        let Ok((key, conn)) = entry else { continue };
        let idle = now_ns.saturating_sub(conn.last_ns) / 1_000_000_000;
        if idle > u64::from(crate::timeouts::state_timeout(config, conn.state)) {
            expired.push(key);
            continue;
        }
        live += 1;
        if let Some(c) = counts.get_mut(conn.dest as usize) {
            if conn.state == abi::state::ESTABLISHED {
                c.active += 1;
            } else {
                c.inactive += 1;
            }
        }
    }
    for key in &expired {
        // Gone already (the program found it first) is fine.
        let _ = conns.remove(key);
    }
    (expired.len(), live)
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    /// Expired connections deleted.
    pub expired: usize,
    /// Live connections counted.
    pub live: usize,
}

impl Sweeper {
    /// Opens the maps by id. `dests` is the number of dest indexes in use (0..dests).
    ///
    /// # Errors
    /// When the kernel refuses a map id.
    pub(crate) fn open(
        ids: MapIds,
        dests: Arc<AtomicU32>,
        rates: crate::rates::SharedRates,
    ) -> Result<Self, String> {
        let open = |id: u32| {
            MapData::from_id(id)
                .and_then(aya::maps::Map::from_map_data)
                .map_err(|e| format!("open map {id}: {e}"))
        };
        let (conns, conns4) = (open(ids.conns)?, open(ids.conns4)?);
        let (counts, config) = (open(ids.counts)?, open(ids.config)?);
        let (dest_map, stats) = (open(ids.dests)?, open(ids.stats)?);
        Ok(Self {
            conns: conns.try_into().map_err(|e| format!("rvs_conns: {e}"))?,
            conns4: conns4.try_into().map_err(|e| format!("rvs_conns4: {e}"))?,
            counts: counts.try_into().map_err(|e| format!("rvs_counts: {e}"))?,
            config: config.try_into().map_err(|e| format!("rvs_config: {e}"))?,
            dest_map: dest_map.try_into().map_err(|e| format!("rvs_dests: {e}"))?,
            stats: stats.try_into().map_err(|e| format!("rvs_stats: {e}"))?,
            dests,
            rates,
        })
    }

    /// One sweep: deletes expired connections and rewrites the counts of dests `0..dests`.
    ///
    /// # Errors
    /// When a map cannot be read or written.
    pub fn sweep(&mut self) -> Result<Swept, String> {
        let now_ns = crate::clock::monotonic_ns();
        let config = self
            .config
            .get(&0, 0)
            .map_err(|e| format!("read rvs_config: {e}"))?;
        let dests = self.dests.load(Ordering::Acquire) as usize;
        let mut counts = vec![abi::Count::default(); dests];
        let (expired6, live6) = sweep_conns(&mut self.conns, now_ns, &config, &mut counts);
        let (expired4, live4) = sweep_conns(&mut self.conns4, now_ns, &config, &mut counts);
        let (expired, live) = (expired4 + expired6, live4 + live6);
        for (id, mut count) in counts.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            let thresholds = self.dest_map.get(&id, 0).unwrap_or_default();
            let was = self.counts.get(&id, 0).unwrap_or_default().overloaded != 0;
            count.overloaded = u32::from(overloaded(&count, &thresholds, was));
            self.counts
                .set(id, count, 0)
                .map_err(|e| format!("write rvs_counts: {e}"))?;
        }
        let mut traffic = HashMap::new();
        for id in 0..u32::try_from(dests).unwrap_or(u32::MAX) {
            if let Ok(per_cpu) = self.stats.get(&id, 0) {
                traffic.insert(id, crate::rates::counters_of(&per_cpu));
            }
        }
        if let Ok(mut book) = self.rates.lock() {
            book.sample(rvs_core::Timestamp(now_ns / 1_000_000), &traffic);
        }
        Ok(Swept { expired, live })
    }

    /// Sweeps every `period` on a thread of its own until `alive` turns false.
    pub fn run(mut self, period: Duration, alive: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let step = Duration::from_millis(100).min(period);
            let mut waited = Duration::ZERO;
            while alive.load(Ordering::Acquire) {
                std::thread::sleep(step);
                waited += step;
                if waited < period {
                    continue;
                }
                waited = Duration::ZERO;
                match self.sweep() {
                    Ok(s) => tracing::debug!(expired = s.expired, live = s.live, "swept"),
                    Err(e) => tracing::warn!(error = %e, "sweep failed"),
                }
            }
        })
    }
}
