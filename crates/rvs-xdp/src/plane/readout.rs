//! What the plane reads back from the program's maps: counters and rates (`--stats`,
//! `--rate`), ActiveConn/InActConn, verdicts. (Connections: [`super::listing`].)

use super::XdpPlane;
use rvs_bpf_abi as abi;
use rvs_core::{ConnCounts, Counters, DataPlaneError, DestStats, Rates, ServiceStats};
use std::collections::HashMap;

impl XdpPlane {
    /// Packets per verdict (`rvs_verdicts`), summed over CPUs, by [`abi::verdict::NAMES`].
    pub(super) fn read_verdicts(&self) -> Result<Vec<rvs_core::PlaneCounter>, DataPlaneError> {
        let per_cpu = &self.writer.maps.verdicts;
        abi::verdict::NAMES
            .iter()
            .zip(0u32..)
            .map(|(name, slot)| {
                let values = per_cpu
                    .get(&slot, 0)
                    .map_err(|e| super::failed("read map rvs_verdicts", e))?;
                Ok(rvs_core::PlaneCounter {
                    name: (*name).to_owned(),
                    value: values.iter().sum(),
                })
            })
            .collect()
    }

    /// How many entries a map of the program holds, as the kernel has it.
    #[must_use]
    pub fn map_capacity(&self, name: &str) -> Option<u32> {
        self.writer.maps.capacity(name)
    }

    /// Every dest's traffic counters, summed over CPUs, by dest id.
    fn dest_counters(&self) -> Result<HashMap<u32, Counters>, DataPlaneError> {
        let per_cpu = &self.writer.maps.stats;
        let mut out = HashMap::new();
        for id in self.writer.layout.dest_ids.values() {
            let v = per_cpu
                .get(id, 0)
                .map_err(|e| super::failed("read map rvs_stats", e))?;
            out.insert(*id, crate::rates::counters_of(&v));
        }
        Ok(out)
    }

    /// Counters, rates and connection counts of every service and dest.
    pub(super) fn read_stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
        let traffic = self.dest_counters()?;
        // The program's own per-dest counts (rvs_counts: kept by it as flows start, change
        // state and expire, recounted by the sweeper every 2 s): reading them is one lookup
        // per dest, where counting the connection tables would walk every flow while the
        // director waits.
        let count_map = &self.writer.maps.counts;
        let mut counts: HashMap<u32, ConnCounts> = HashMap::new();
        for id in self.writer.layout.dest_ids.values() {
            let c = count_map
                .get(id, 0)
                .map_err(|e| super::failed("read map rvs_counts", e))?;
            counts.insert(
                *id,
                ConnCounts {
                    active: u32::try_from(c.active).unwrap_or(0),
                    inactive: u32::try_from(c.inactive).unwrap_or(0),
                    ..ConnCounts::default()
                },
            );
        }
        let book = self.rates.lock().ok();
        let rates_of = |f: &dyn Fn(&crate::rates::RateBook) -> Rates| {
            book.as_deref().map(f).unwrap_or_default()
        };
        Ok(self
            .writer
            .table
            .services()
            .map(|s| {
                let dests: Vec<DestStats> = s
                    .dests()
                    .iter()
                    .map(|d| {
                        let id = self
                            .writer
                            .layout
                            .dest_ids
                            .get(&(s.key(), d.addr()))
                            .copied();
                        DestStats {
                            addr: d.addr(),
                            conns: id
                                .and_then(|id| counts.get(&id))
                                .copied()
                                .unwrap_or_default(),
                            counters: id
                                .and_then(|id| traffic.get(&id))
                                .copied()
                                .unwrap_or_default(),
                            rates: id.map(|id| rates_of(&|b| b.dest(id))).unwrap_or_default(),
                        }
                    })
                    .collect();
                let mut total = Counters::default();
                for d in &dests {
                    total += d.counters;
                }
                let id = self.writer.layout.service_ids.get(&s.key()).copied();
                ServiceStats {
                    service: s.key(),
                    counters: total,
                    rates: id
                        .map(|id| rates_of(&|b| b.service(id)))
                        .unwrap_or_default(),
                    dests,
                }
            })
            .collect())
    }
}
