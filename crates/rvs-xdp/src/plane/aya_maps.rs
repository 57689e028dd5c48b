//! The program's maps, opened once when it is loaded, each typed as the C side declares it;
//! the production side of the [`Maps`] seam.

use super::failed;
use super::listing::Listing;
use super::maps::{Maps, SlotTable};
use aya::maps::{Array, DevMapHash, HashMap as BpfHashMap, IterableMap, MapData, PerCpuArray};
use aya::Ebpf;
use rvs_bpf_abi as abi;
use rvs_core::DataPlaneError;
use std::collections::HashMap;
use std::sync::Arc;

/// Every map the plane reads or writes.
pub struct AyaMaps {
    pub(super) services: BpfHashMap<MapData, abi::SvcKey, abi::Svc>,
    pub(super) ring: Array<MapData, u32>,
    pub(super) mh: Array<MapData, u32>,
    pub(super) dests: Array<MapData, abi::Dest>,
    pub(super) cursors: Array<MapData, u32>,
    pub(super) counts: Array<MapData, abi::Count>,
    pub(super) config: Array<MapData, abi::Config>,
    pub(super) stats: PerCpuArray<MapData, abi::Stat>,
    pub(super) verdicts: PerCpuArray<MapData, u64>,
    pub(super) tx_ports: DevMapHash<MapData>,
    /// The connection tables, read by listings apart from the plane.
    pub(super) listing: Arc<Listing>,
    /// Entries each map of the program holds, as the kernel has it, by name.
    capacities: HashMap<String, u32>,
    /// The CPUs a per-CPU map has a value for.
    cpus: usize,
}

fn capacity(map: &aya::maps::Map) -> Option<u32> {
    use aya::maps::Map;
    let data = match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::DevMapHash(d) => d,
        _ => return None,
    };
    data.info().ok().map(|i| i.max_entries())
}

/// The kernel's id of a map (to open it again on another thread).
pub(super) fn id_of<K: aya::Pod, V>(
    map: &impl IterableMap<K, V>,
    name: &str,
) -> Result<u32, DataPlaneError> {
    map.map()
        .info()
        .map(|i| i.id())
        .map_err(|e| failed(format!("inspect map {name}"), e))
}

impl AyaMaps {
    /// Takes the plane's maps out of a loaded object.
    ///
    /// # Errors
    /// When the object lacks a map or one has another type than the C side's.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, DataPlaneError> {
        let capacities = ebpf
            .maps()
            .filter_map(|(name, map)| Some((name.to_owned(), capacity(map)?)))
            .collect();
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| failed(what, e))?;
        macro_rules! take {
            ($name:expr) => {{
                let name = $name;
                let map = ebpf.take_map(name).ok_or_else(|| {
                    failed(format!("find map {name}"), "the program has no such map")
                })?;
                map.try_into()
                    .map_err(|e| failed(format!("open map {name}"), e))?
            }};
        }
        Ok(Self {
            services: take!(abi::maps::SERVICES),
            ring: take!(abi::maps::RING),
            mh: take!(abi::maps::MH),
            dests: take!(abi::maps::DESTS),
            cursors: take!(abi::maps::CURSORS),
            counts: take!(abi::maps::COUNTS),
            config: take!(abi::maps::CONFIG),
            stats: take!(abi::maps::STATS),
            verdicts: take!(abi::maps::VERDICTS),
            tx_ports: take!(abi::maps::TX_PORTS),
            listing: Arc::new(Listing::new(
                take!(abi::maps::CONNS),
                take!(abi::maps::CONNS4),
                take!(abi::maps::TEMPLATES),
            )),
            capacities,
            cpus,
        })
    }

    /// How many entries a map of the program holds, as the kernel has it.
    #[must_use]
    pub fn capacity(&self, name: &str) -> Option<u32> {
        self.capacities.get(name).copied()
    }
}

fn write_failed(name: &str, e: impl std::fmt::Display) -> DataPlaneError {
    failed(format!("write {name}"), e)
}

fn read_failed(name: &str, e: impl std::fmt::Display) -> DataPlaneError {
    failed(format!("read {name}"), e)
}

impl Maps for AyaMaps {
    fn set_config(&mut self, config: abi::Config) -> Result<(), DataPlaneError> {
        self.config
            .set(0, config, 0)
            .map_err(|e| write_failed(abi::maps::CONFIG, e))
    }

    fn set_service(&mut self, key: abi::SvcKey, service: abi::Svc) -> Result<(), DataPlaneError> {
        self.services
            .insert(key, service, 0)
            .map_err(|e| write_failed(abi::maps::SERVICES, e))
    }

    fn remove_service(&mut self, key: &abi::SvcKey) -> Result<(), DataPlaneError> {
        match self.services.remove(key) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            Err(e) => Err(write_failed(abi::maps::SERVICES, e)),
        }
    }

    fn dest(&self, id: u32) -> Result<abi::Dest, DataPlaneError> {
        self.dests
            .get(&id, 0)
            .map_err(|e| read_failed(abi::maps::DESTS, e))
    }

    fn set_dest(&mut self, id: u32, dest: abi::Dest) -> Result<(), DataPlaneError> {
        self.dests
            .set(id, dest, 0)
            .map_err(|e| write_failed(abi::maps::DESTS, e))
    }

    fn count(&self, id: u32) -> Result<abi::Count, DataPlaneError> {
        self.counts
            .get(&id, 0)
            .map_err(|e| read_failed(abi::maps::COUNTS, e))
    }

    fn set_count(&mut self, id: u32, count: abi::Count) -> Result<(), DataPlaneError> {
        self.counts
            .set(id, count, 0)
            .map_err(|e| write_failed(abi::maps::COUNTS, e))
    }

    fn set_slot(&mut self, table: SlotTable, index: u32, value: u32) -> Result<(), DataPlaneError> {
        let map = match table {
            SlotTable::Ring => &mut self.ring,
            SlotTable::Mh => &mut self.mh,
        };
        map.set(index, value, 0)
            .map_err(|e| write_failed(table.map(), e))
    }

    fn set_cursor(&mut self, id: u32, value: u32) -> Result<(), DataPlaneError> {
        self.cursors
            .set(id, value, 0)
            .map_err(|e| write_failed(abi::maps::CURSORS, e))
    }

    fn zero_stats(&mut self, id: u32) -> Result<(), DataPlaneError> {
        let zeros = aya::maps::PerCpuValues::try_from(vec![abi::Stat::default(); self.cpus])
            .map_err(|e| write_failed(abi::maps::STATS, e))?;
        self.stats
            .set(id, zeros, 0)
            .map_err(|e| write_failed(abi::maps::STATS, e))
    }
}
