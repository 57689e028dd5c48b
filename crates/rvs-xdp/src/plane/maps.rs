//! The seam between the map writer and the program's maps: the few writes a table change
//! makes, so the writer runs against the kernel's maps (aya) in production and against an
//! in-memory fake ([`super::memory::MemoryMaps`]) in tests without root.

use rvs_bpf_abi as abi;
use rvs_core::DataPlaneError;

/// Which per-service slot table a slot write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotTable {
    /// `rvs_ring`: [`abi::RING_SIZE`] slots a service (cycles, scan lists, buckets).
    Ring,
    /// `rvs_mh`: [`abi::MH_SIZE`] slots a service (the Maglev table).
    Mh,
}

impl SlotTable {
    /// The map's name, as the C side declares it.
    #[must_use]
    pub const fn map(self) -> &'static str {
        match self {
            Self::Ring => abi::maps::RING,
            Self::Mh => abi::maps::MH,
        }
    }

    /// Slots a service owns in this table.
    #[must_use]
    pub const fn per_service(self) -> u32 {
        match self {
            Self::Ring => abi::RING_SIZE,
            Self::Mh => abi::MH_SIZE,
        }
    }
}

/// The writes (and the two reads) the map writer makes. Every call is one map operation.
pub trait Maps {
    /// Writes the program's configuration (`rvs_config[0]`).
    ///
    /// # Errors
    /// When the map refuses the write.
    fn set_config(&mut self, config: abi::Config) -> Result<(), DataPlaneError>;
    /// Inserts or replaces a service (`rvs_services`).
    ///
    /// # Errors
    /// When the map refuses the write (full, ...).
    fn set_service(&mut self, key: abi::SvcKey, service: abi::Svc) -> Result<(), DataPlaneError>;
    /// Removes a service's key; removing one that is not there is not an error.
    ///
    /// # Errors
    /// When the map refuses the delete for another reason.
    fn remove_service(&mut self, key: &abi::SvcKey) -> Result<(), DataPlaneError>;
    /// Reads dest entry `id` (`rvs_dests`).
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn dest(&self, id: u32) -> Result<abi::Dest, DataPlaneError>;
    /// Writes dest entry `id`.
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn set_dest(&mut self, id: u32, dest: abi::Dest) -> Result<(), DataPlaneError>;
    /// Reads dest `id`'s connection counts (`rvs_counts`).
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn count(&self, id: u32) -> Result<abi::Count, DataPlaneError>;
    /// Writes dest `id`'s connection counts.
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn set_count(&mut self, id: u32, count: abi::Count) -> Result<(), DataPlaneError>;
    /// Writes one slot (`index` counts from the table's start, across services).
    ///
    /// # Errors
    /// When `index` is beyond the map.
    fn set_slot(&mut self, table: SlotTable, index: u32, value: u32) -> Result<(), DataPlaneError>;
    /// Writes service `id`'s cycle position (`rvs_cursors`).
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn set_cursor(&mut self, id: u32, value: u32) -> Result<(), DataPlaneError>;
    /// Zeroes dest `id`'s traffic counters on every CPU (`rvs_stats`).
    ///
    /// # Errors
    /// When `id` is beyond the map.
    fn zero_stats(&mut self, id: u32) -> Result<(), DataPlaneError>;
}
