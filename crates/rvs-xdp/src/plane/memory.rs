//! An in-memory stand-in for the program's maps, with the kernel's bounds (an array refuses an
//! index past its end, the service hash refuses a key past its capacity), a count of every
//! write, and an injected failure, so the map writer is tested without root or a kernel.

use super::maps::{Maps, SlotTable};
use rvs_bpf_abi as abi;
use rvs_core::DataPlaneError;
use std::collections::HashMap;

/// The fake maps. Arrays read as zeroes where nothing was written, as the kernel's do.
#[derive(Debug, Default)]
pub struct MemoryMaps {
    /// `rvs_config[0]`.
    pub config: abi::Config,
    /// `rvs_services`.
    pub services: HashMap<abi::SvcKey, abi::Svc>,
    /// `rvs_dests`, by id.
    pub dests: HashMap<u32, abi::Dest>,
    /// `rvs_counts`, by dest id.
    pub counts: HashMap<u32, abi::Count>,
    /// `rvs_ring` and `rvs_mh`, by table and index.
    pub slots: HashMap<(SlotTable, u32), u32>,
    /// `rvs_cursors`, by service id.
    pub cursors: HashMap<u32, u32>,
    /// Dest ids whose counters were zeroed, in order.
    pub zeroed: Vec<u32>,
    /// Map writes made (every set, insert, remove and zeroing).
    pub writes: u64,
    /// Refuse every write once this many have been made (a full map, a failing syscall).
    pub fail_after: Option<u64>,
}

fn beyond(map: &str, index: u32, capacity: u32) -> DataPlaneError {
    super::failed(
        format!("write {map}"),
        format!("index {index} is beyond the map's {capacity} entries"),
    )
}

impl MemoryMaps {
    /// A slot as the table holds it (0 where nothing was written).
    #[must_use]
    pub fn slot(&self, table: SlotTable, index: u32) -> u32 {
        self.slots.get(&(table, index)).copied().unwrap_or(0)
    }

    /// Service `id`'s region of a slot table.
    #[must_use]
    pub fn region(&self, table: SlotTable, id: u32) -> Vec<u32> {
        let per = table.per_service();
        (id * per..(id + 1) * per)
            .map(|i| self.slot(table, i))
            .collect()
    }

    /// Counts a write, or refuses it once the injected failure is due.
    fn write(&mut self, map: &str) -> Result<(), DataPlaneError> {
        if self.fail_after.is_some_and(|n| self.writes >= n) {
            return Err(super::failed(
                format!("write {map}"),
                "injected failure (MemoryMaps::fail_after)",
            ));
        }
        self.writes += 1;
        Ok(())
    }

    fn check(map: &str, index: u32, capacity: u32) -> Result<(), DataPlaneError> {
        if index >= capacity {
            return Err(beyond(map, index, capacity));
        }
        Ok(())
    }
}

impl Maps for MemoryMaps {
    fn set_config(&mut self, config: abi::Config) -> Result<(), DataPlaneError> {
        self.write(abi::maps::CONFIG)?;
        self.config = config;
        Ok(())
    }

    fn set_service(&mut self, key: abi::SvcKey, service: abi::Svc) -> Result<(), DataPlaneError> {
        if !self.services.contains_key(&key) && self.services.len() >= abi::MAX_SERVICES as usize {
            return Err(super::failed(
                format!("write {}", abi::maps::SERVICES),
                "the map is full",
            ));
        }
        self.write(abi::maps::SERVICES)?;
        self.services.insert(key, service);
        Ok(())
    }

    fn remove_service(&mut self, key: &abi::SvcKey) -> Result<(), DataPlaneError> {
        self.write(abi::maps::SERVICES)?;
        self.services.remove(key);
        Ok(())
    }

    fn dest(&self, id: u32) -> Result<abi::Dest, DataPlaneError> {
        Self::check(abi::maps::DESTS, id, abi::MAX_DESTS)?;
        Ok(self.dests.get(&id).copied().unwrap_or_default())
    }

    fn set_dest(&mut self, id: u32, dest: abi::Dest) -> Result<(), DataPlaneError> {
        Self::check(abi::maps::DESTS, id, abi::MAX_DESTS)?;
        self.write(abi::maps::DESTS)?;
        self.dests.insert(id, dest);
        Ok(())
    }

    fn count(&self, id: u32) -> Result<abi::Count, DataPlaneError> {
        Self::check(abi::maps::COUNTS, id, abi::MAX_DESTS)?;
        Ok(self.counts.get(&id).copied().unwrap_or_default())
    }

    fn set_count(&mut self, id: u32, count: abi::Count) -> Result<(), DataPlaneError> {
        Self::check(abi::maps::COUNTS, id, abi::MAX_DESTS)?;
        self.write(abi::maps::COUNTS)?;
        self.counts.insert(id, count);
        Ok(())
    }

    fn set_slot(&mut self, table: SlotTable, index: u32, value: u32) -> Result<(), DataPlaneError> {
        Self::check(table.map(), index, abi::MAX_SERVICES * table.per_service())?;
        self.write(table.map())?;
        self.slots.insert((table, index), value);
        Ok(())
    }

    fn set_cursor(&mut self, id: u32, value: u32) -> Result<(), DataPlaneError> {
        Self::check(abi::maps::CURSORS, id, abi::MAX_SERVICES)?;
        self.write(abi::maps::CURSORS)?;
        self.cursors.insert(id, value);
        Ok(())
    }

    fn zero_stats(&mut self, id: u32) -> Result<(), DataPlaneError> {
        Self::check(abi::maps::STATS, id, abi::MAX_DESTS)?;
        self.write(abi::maps::STATS)?;
        self.zeroed.push(id);
        Ok(())
    }
}
