//! The map writer: a mirror of the table, and for each change a pure plan of the map entries
//! it touches (which service key, which dests, which ring and Maglev slots) followed by the
//! writes through [`Maps`]. Only slots that differ from what was last written are written.

use super::maps::{Maps, SlotTable};
use super::{failed, tables};
use crate::{addr, ring, slots};
use rvs_bpf_abi as abi;
use rvs_core::{Change, DataPlaneError, Persistence, ServiceKey, Table};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The fallback MAC of a real server (the neighbour table's), when the FIB gives none.
pub type MacOf<'a> = &'a dyn Fn(IpAddr) -> Option<[u8; 6]>;

/// Where things live in the maps: ids of services and dests, and the slots last written.
#[derive(Debug, Default)]
pub struct Layout {
    /// Each service's id (its row in `rvs_cursors`, its region of `rvs_ring` and `rvs_mh`).
    pub service_ids: HashMap<ServiceKey, u32>,
    /// Each dest's index in `rvs_dests`. A dest that leaves keeps its index (its open flows
    /// still point at it) and gets it back if it joins again.
    pub dest_ids: HashMap<(ServiceKey, SocketAddr), u32>,
    /// Dest indexes in use (`0..dest_count`); shared with the sweeper.
    pub dest_count: Arc<AtomicU32>,
    /// What each service's region of a slot table holds.
    written: HashMap<(SlotTable, u32), Vec<u32>>,
    /// Ring and Maglev slots written since load.
    slot_writes: u64,
}

impl Layout {
    /// Each dest index's real server (for listings of flows, which name dests by index).
    #[must_use]
    pub fn dest_addrs(&self) -> HashMap<u32, SocketAddr> {
        self.dest_ids.iter().map(|((_, a), id)| (*id, *a)).collect()
    }

    /// Forgets what the slot tables hold, so the next write of each service rewrites its
    /// regions whole (after the maps were replaced; and what every write did before the diff,
    /// to measure against).
    pub fn forget_slots(&mut self) {
        self.written.clear();
    }
}

/// What a write did that the plane's helpers hear of (the next-hop resolver, the rate book).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Dests (index, address) whose next hops to keep resolved.
    pub wanted: Vec<(u32, IpAddr)>,
    /// Dests that left their service.
    pub forgotten: Vec<u32>,
    /// Dest index and the service id it counts towards.
    pub owned: Vec<(u32, u32)>,
    /// Dests whose counters were zeroed.
    pub zeroed: Vec<u32>,
}

/// The slots of one service's region that change, with the region's new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPlan {
    /// Which table.
    pub table: SlotTable,
    /// The service id (the region).
    pub service: u32,
    /// Positions in the region whose value changes.
    pub moved: Vec<usize>,
    /// The region's new content.
    pub values: Vec<u32>,
}

/// One dest entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestPlan {
    /// Its index in `rvs_dests`.
    pub id: u32,
    /// Whether the index is new.
    pub new: bool,
    /// The real server.
    pub addr: SocketAddr,
    /// The entry.
    pub entry: abi::Dest,
}

/// What happens to the service itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    /// Removed from the table: its key goes, its ring empties (open flows keep their dests).
    Remove {
        /// The id it had, if it was written.
        id: Option<u32>,
        /// The ring emptied.
        ring: Option<SlotPlan>,
    },
    /// Written: dests, slots, a cursor reset and the key.
    Write {
        /// Its id.
        id: u32,
        /// Whether the id is new.
        new: bool,
        /// Its dests, in the table's order.
        dests: Vec<DestPlan>,
        /// The Maglev table (mh services).
        mh: Option<SlotPlan>,
        /// The ring.
        ring: SlotPlan,
        /// The service entry.
        entry: abi::Svc,
    },
}

/// Every map entry one service's change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    /// The service.
    pub key: ServiceKey,
    /// Its key in `rvs_services`.
    pub map_key: abi::SvcKey,
    /// Dests that left it: no longer available to persistence templates.
    pub retired: Vec<u32>,
    /// The service's own entries.
    pub action: ServiceAction,
}

/// The map key of a service (none for fwmark services, which the plane refuses).
#[must_use]
pub fn svc_key(key: &ServiceKey) -> Option<abi::SvcKey> {
    match key {
        ServiceKey::Inet { protocol, addr: a } => {
            let (addr, af) = addr::to_map(a.ip());
            Some(abi::SvcKey {
                addr,
                port: a.port().to_be(),
                proto: protocol.number(),
                af,
            })
        }
        ServiceKey::FwMark { .. } => None,
    }
}

fn slot_plan(layout: &Layout, table: SlotTable, service: u32, values: Vec<u32>) -> SlotPlan {
    let old = layout.written.get(&(table, service)).map(Vec::as_slice);
    SlotPlan {
        table,
        service,
        moved: slots::changed(old, &values),
        values,
    }
}

/// Plans what the maps must hold for service `key` as `table` has it now (nothing for a
/// fwmark service). Pure: it reads the mirror and the layout and writes nothing.
///
/// # Errors
/// When the service or dest map has no room for a new entry.
pub fn plan(
    table: &Table,
    layout: &Layout,
    key: ServiceKey,
    mac: MacOf<'_>,
) -> Result<Option<ServicePlan>, DataPlaneError> {
    let Some(map_key) = svc_key(&key) else {
        return Ok(None);
    };
    let service = table.service(&key);
    let mut retired: Vec<u32> = layout
        .dest_ids
        .iter()
        .filter(|((k, a), _)| {
            *k == key && service.is_none_or(|s| !s.dests().iter().any(|d| d.addr() == *a))
        })
        .map(|(_, id)| *id)
        .collect();
    retired.sort_unstable();
    let Some(service) = service else {
        let id = layout.service_ids.get(&key).copied();
        let ring = id.map(|id| slot_plan(layout, SlotTable::Ring, id, vec![0; ring::SIZE]));
        return Ok(Some(ServicePlan {
            key,
            map_key,
            retired,
            action: ServiceAction::Remove { id, ring },
        }));
    };
    let (id, new) = match layout.service_ids.get(&key) {
        Some(id) => (*id, false),
        None => {
            let used: HashSet<u32> = layout.service_ids.values().copied().collect();
            let id = (0..abi::MAX_SERVICES)
                .find(|i| !used.contains(i))
                .ok_or_else(|| failed("add a service", "the service map is full"))?;
            (id, true)
        }
    };
    let mut next_dest = layout.dest_count.load(Ordering::Acquire);
    let mut ids: HashMap<SocketAddr, u32> = HashMap::new();
    let mut dests = Vec::new();
    for d in service.dests() {
        let addr = d.addr();
        let (dest_id, new) = match layout.dest_ids.get(&(key, addr)) {
            Some(id) => (*id, false),
            None => {
                if next_dest >= abi::MAX_DESTS {
                    return Err(failed("add a dest", "the dest map is full"));
                }
                next_dest += 1;
                (next_dest - 1, true)
            }
        };
        ids.insert(addr, dest_id);
        // The program asks the kernel's FIB for the next hop; this MAC is its fallback where
        // the FIB helper answers nothing (forwarding off on the interface). The resolver
        // keeps it current (and resolves it where the kernel has none yet).
        let mac = mac(addr.ip()).unwrap_or_else(|| {
            tracing::debug!(real_server = %addr.ip(), "no neighbour entry yet: resolving it");
            [0; 6]
        });
        let (method, tun_type, tun_port, tun_flags) = tables::forwarding(d.config.forward);
        dests.push(DestPlan {
            id: dest_id,
            new,
            addr,
            entry: abi::Dest {
                addr: addr::to_map(addr.ip()).0,
                port: addr.port().to_be(),
                method,
                available: 1,
                mac,
                weight: u16::try_from(d.weight()).unwrap_or(u16::MAX),
                u_threshold: d.config.u_threshold,
                l_threshold: d.config.l_threshold,
                tun_type,
                tun_flags,
                tun_port,
                ..abi::Dest::default()
            },
        });
    }
    // Dests that left keep their index: the tables name only the ones in the service.
    let slot_of = |answer: &Option<SocketAddr>| {
        answer
            .and_then(|a| ids.get(&a).map(|id| id + 1))
            .unwrap_or(0)
    };
    let pick = tables::pick_mode(service);
    let answers: Vec<u32> = tables::answers(service, pick).iter().map(slot_of).collect();
    let flags = service.config().sched_flags;
    let (ring_values, mh, len) = match pick {
        p if p == abi::PICK_CURSOR || tables::scans(p) => {
            let len = u16::try_from(answers.len()).unwrap_or(0);
            let mut values = answers;
            values.resize(ring::SIZE, 0);
            (values, None, len)
        }
        abi::PICK_MH => {
            let mut len = 0;
            if flags.fallback() {
                len |= abi::MH_FALLBACK;
            }
            if flags.port() {
                len |= abi::MH_PORT;
            }
            let mh = slot_plan(layout, SlotTable::Mh, id, answers);
            (vec![0; ring::SIZE], Some(mh), len)
        }
        _ => (answers, None, 0),
    };
    let (persist_timeout, persist_mask) = match service.config().persistence {
        Some(Persistence { timeout, netmask }) => (timeout, addr::mask(netmask)),
        None => (0, [0; 4]),
    };
    Ok(Some(ServicePlan {
        key,
        map_key,
        retired,
        action: ServiceAction::Write {
            id,
            new,
            dests,
            mh,
            ring: slot_plan(layout, SlotTable::Ring, id, ring_values),
            entry: abi::Svc {
                id,
                pick,
                len,
                persist_timeout,
                persist_mask,
            },
        },
    }))
}

/// Writes a slot plan's moved slots. A failure forgets what the region held, so the next
/// write of it rewrites the whole region.
fn write_slots(
    plan: SlotPlan,
    layout: &mut Layout,
    maps: &mut impl Maps,
) -> Result<(), DataPlaneError> {
    let base = plan.service * plan.table.per_service();
    for &slot in &plan.moved {
        let index = base + u32::try_from(slot).unwrap_or(u32::MAX);
        if let Err(e) = maps.set_slot(plan.table, index, plan.values[slot]) {
            layout.written.remove(&(plan.table, plan.service));
            return Err(e);
        }
    }
    layout.slot_writes += plan.moved.len() as u64;
    layout
        .written
        .insert((plan.table, plan.service), plan.values);
    Ok(())
}

/// Carries out a plan: ids into the layout, then retired dests, dest entries, the Maglev
/// table, the cursor, the ring and last the service key, so the program never sees a key
/// whose tables are not written yet.
///
/// # Errors
/// The first write the maps refuse; what was written before it stays.
pub fn write(
    plan: ServicePlan,
    layout: &mut Layout,
    maps: &mut impl Maps,
    events: &mut Events,
) -> Result<(), DataPlaneError> {
    for id in plan.retired {
        let mut dest = maps.dest(id)?;
        if dest.available != 0 {
            dest.available = 0;
            maps.set_dest(id, dest)?;
        }
        events.forgotten.push(id);
    }
    match plan.action {
        ServiceAction::Remove { id, ring } => {
            if id.is_some() {
                layout.service_ids.remove(&plan.key);
                maps.remove_service(&plan.map_key)?;
            }
            if let Some(ring) = ring {
                write_slots(ring, layout, maps)?;
            }
        }
        ServiceAction::Write {
            id,
            new,
            dests,
            mh,
            ring,
            entry,
        } => {
            if new {
                layout.service_ids.insert(plan.key, id);
            }
            for d in dests {
                if d.new {
                    layout.dest_ids.insert((plan.key, d.addr), d.id);
                    layout.dest_count.fetch_max(d.id + 1, Ordering::AcqRel);
                }
                let old = maps.dest(d.id).unwrap_or_default();
                maps.set_dest(d.id, d.entry)?;
                // An edit that drops or raises the upper threshold clears the overload flag,
                // as the kernel's does.
                let threshold = d.entry.u_threshold;
                if threshold == 0 || threshold > old.u_threshold {
                    let mut count = maps.count(d.id)?;
                    if count.overloaded != 0 {
                        count.overloaded = 0;
                        maps.set_count(d.id, count)?;
                    }
                }
                events.wanted.push((d.id, d.addr.ip()));
                events.owned.push((d.id, id));
                tracing::debug!(service = %plan.key, dest = %d.addr, dest_id = d.id, "dest written");
            }
            if let Some(mh) = mh {
                write_slots(mh, layout, maps)?;
            }
            // A changed sequence starts from its beginning, as the kernel's wrr does.
            maps.set_cursor(id, 0)?;
            write_slots(ring, layout, maps)?;
            maps.set_service(plan.map_key, entry)?;
        }
    }
    Ok(())
}

/// The mirror of the table and the layout of the maps, writing through `M`.
#[derive(Debug)]
pub struct MapWriter<M> {
    /// The maps written.
    pub maps: M,
    /// The table as the maps hold it.
    pub table: Table,
    /// Where things live in the maps.
    pub layout: Layout,
    /// The program's configuration as written.
    pub config: abi::Config,
}

impl<M: Maps> MapWriter<M> {
    /// A writer over empty maps; writes `config`. `dest_count` is shared with the sweeper.
    ///
    /// # Errors
    /// When the config map refuses the write.
    pub fn new(
        mut maps: M,
        config: abi::Config,
        dest_count: Arc<AtomicU32>,
    ) -> Result<Self, DataPlaneError> {
        maps.set_config(config)?;
        Ok(Self {
            maps,
            table: Table::new(),
            layout: Layout {
                dest_count,
                ..Layout::default()
            },
            config,
        })
    }

    /// Ring and Maglev slots written since load.
    #[must_use]
    pub const fn slot_writes(&self) -> u64 {
        self.layout.slot_writes
    }

    /// Applies changes (already checked) to the mirror and writes what they touch, each
    /// touched service once, after all of them. `events` hears of what was written even when
    /// a write fails part way.
    ///
    /// # Errors
    /// When the mirror refuses a change or the maps refuse a write.
    pub fn apply(
        &mut self,
        changes: &[Change],
        mac: MacOf<'_>,
        events: &mut Events,
    ) -> Result<(), DataPlaneError> {
        let mut touched = Vec::new();
        for c in changes {
            // A dest that joins again starts from zero, as a new IPVS dest does; -Z zeroes
            // the counters of a service's dests, or of all.
            let mut zero: Vec<u32> = match c {
                Change::DestAdded { service, dest } => self
                    .layout
                    .dest_ids
                    .get(&(*service, dest.addr))
                    .copied()
                    .into_iter()
                    .collect(),
                Change::Zeroed { service } => self
                    .layout
                    .dest_ids
                    .iter()
                    .filter(|((k, _), _)| service.is_none_or(|s| s == *k))
                    .map(|(_, id)| *id)
                    .collect(),
                _ => Vec::new(),
            };
            zero.sort_unstable();
            for id in zero {
                self.maps.zero_stats(id)?;
                events.zeroed.push(id);
            }
            self.table
                .apply_change(c)
                .map_err(|e| failed("mirror the table", e))?;
            let key = match c {
                Change::ServiceAdded(s) | Change::ServiceEdited(s) => Some(s.key),
                Change::ServiceRemoved { service }
                | Change::DestAdded { service, .. }
                | Change::DestEdited { service, .. }
                | Change::DestRemoved { service, .. } => Some(*service),
                _ => None,
            };
            if let Some(k) = key {
                if !touched.contains(&k) {
                    touched.push(k);
                }
            }
            if let Change::TimeoutsSet(t) = c {
                self.config.tcp_timeout = t.tcp;
                self.config.tcpfin_timeout = t.tcp_fin;
                self.config.udp_timeout = t.udp;
                self.maps.set_config(self.config)?;
            }
        }
        for key in touched {
            if let Some(p) = plan(&self.table, &self.layout, key, mac)? {
                write(p, &mut self.layout, &mut self.maps, events)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
