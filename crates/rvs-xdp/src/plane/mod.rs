//! The xdp plane: loads the program, keeps a mirror of the table, and writes only the map
//! entries a change touches (a service's key, its dests, its ring).

use crate::addr;
use crate::neighbors::Neighbors;
use crate::ring;
use crate::sweep::Sweeper;
use aya::maps::{Array, HashMap as BpfHashMap, PerCpuArray};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use rvs_bpf_abi as abi;
use rvs_core::{
    Change, ConnectionEntry, DataPlane, DataPlaneError, ForwardMethod, Persistence, ServiceKey,
    ServiceStats, Table,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod check;
mod director;
mod readout;
mod tables;

pub use director::DirectorAddr;

const NAME: &str = "xdp";
/// The kernel's SYN_RECV timeout, seconds.
const SYN_TIMEOUT: u32 = 60;
const PROGRAM: &str = "rvs_xdp";

/// The xdp plane.
pub struct XdpPlane {
    ebpf: Ebpf,
    config: abi::Config,
    table: Table,
    neighbors: Box<dyn Neighbors>,
    service_ids: HashMap<ServiceKey, u32>,
    dest_ids: HashMap<(ServiceKey, SocketAddr), u32>,
    /// Dest indexes in use (`0..dest_count`); shared with the sweeper.
    dest_count: Arc<AtomicU32>,
    /// Cleared when the plane is dropped, which stops its sweeper thread.
    alive: Arc<AtomicBool>,
    /// Rate estimators, fed by the sweeper.
    rates: crate::rates::SharedRates,
    /// The dests whose next hops the resolver keeps resolved.
    resolver: crate::resolver::Handle,
    /// The resolver's bell, until its thread starts ([`XdpPlane::for_interfaces`]).
    resolver_wake: Option<std::sync::mpsc::Receiver<()>>,
    /// What `rvs_ring` and `rvs_mh` hold for each service id (by map name and id), so a
    /// change writes only the slots that differ.
    written: HashMap<(&'static str, u32), Vec<u32>>,
    /// Ring and Maglev slots written since load.
    slot_writes: u64,
}

impl Drop for XdpPlane {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// The maps sized by the connection table's size (`RVS_CONN_TABLE` in the C).
pub const CONN_TABLES: [&str; 4] = [
    abi::maps::CONNS,
    abi::maps::CONNS4,
    abi::maps::NAT_BACK,
    abi::maps::TEMPLATES,
];

/// How often rvsd's plane sweeps its connection table.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(2);

fn failed(operation: impl Into<String>, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::Failed {
        plane: NAME.to_owned(),
        operation: operation.into(),
        message: e.to_string(),
    }
}

fn unsupported(what: String, hint: &str) -> DataPlaneError {
    DataPlaneError::Unsupported {
        plane: NAME.to_owned(),
        what,
        hint: hint.to_owned(),
    }
}

/// The plane cannot run without its BPF object.
fn without_object(why: String) -> DataPlaneError {
    unsupported(format!("run: {why}"), "--dataplane proxy")
}

impl XdpPlane {
    /// Loads the program and attaches it to every interface (the first one's addresses are the
    /// director's) in `mode`, or native where the driver has it and generic otherwise, logging
    /// the mode each got. (On veth, native XDP_TX needs an XDP program on the peer; generic
    /// mode does not.)
    ///
    /// # Errors
    /// When loading or any attach fails.
    pub fn for_interfaces(
        interfaces: &[String],
        mode: Option<XdpMode>,
        conn_table: u32,
    ) -> Result<Self, DataPlaneError> {
        let first = interfaces.first().ok_or_else(|| {
            unsupported(
                "run without an interface".to_owned(),
                "--interface IF (repeatable)",
            )
        })?;
        let mut plane = Self::load_sized(
            DirectorAddr::of_interface(first)?,
            Box::new(crate::neighbors::KernelNeighbors),
            conn_table,
        )?;
        for interface in interfaces {
            let mode = match mode {
                None => plane.attach(interface)?,
                Some(m) => {
                    plane
                        .program()?
                        .attach(interface, m)
                        .map_err(|e| failed(format!("attach to {interface} in {m:?} mode"), e))?;
                    m
                }
            };
            plane.add_tx_port(interface)?;
            tracing::info!(%interface, ?mode, "XDP program attached");
        }
        plane.sweeper()?.run(SWEEP_PERIOD, Arc::clone(&plane.alive));
        plane.resolver()?.run(Arc::clone(&plane.alive));
        Ok(plane)
    }

    /// Loads the program (without attaching it anywhere) and writes the director's addresses.
    ///
    /// # Errors
    /// When the object is missing (built without clang) or the kernel refuses it.
    pub fn load(
        director: DirectorAddr,
        neighbors: Box<dyn Neighbors>,
    ) -> Result<Self, DataPlaneError> {
        Self::load_sized(director, neighbors, abi::CONN_TABLE)
    }

    /// [`XdpPlane::load`] with connection tables of `conn_table` flows each (IPv4 and IPv6
    /// flows, the NAT way back and persistence templates; least recently used go first).
    ///
    /// # Errors
    /// As [`XdpPlane::load`]; a size the kernel refuses.
    pub fn load_sized(
        director: DirectorAddr,
        neighbors: Box<dyn Neighbors>,
        conn_table: u32,
    ) -> Result<Self, DataPlaneError> {
        let object = crate::object().map_err(without_object)?;
        let mut loader = aya::EbpfLoader::new();
        for map in CONN_TABLES {
            loader.map_max_entries(map, conn_table);
        }
        let mut ebpf = loader
            .load(object)
            .map_err(|e| failed("load the BPF object", e))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| failed("find the XDP program", PROGRAM))?
            .try_into()
            .map_err(|e| failed("find the XDP program", e))?;
        prog.load().map_err(|e| {
            failed(
                "load the XDP program (needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON)",
                e,
            )
        })?;
        let clock = crate::clock::calibrate(&mut ebpf)
            .map_err(|e| failed("measure the kernel's clock for the program", e))?;
        let d = rvs_core::Timeouts::default();
        let config = abi::Config {
            tunnel_src: addr::word_v4(director.tunnel_src),
            tunnel_src6: director
                .tunnel_src6
                .map_or([0; 4], |ip| addr::to_map(ip.into()).0),
            tcp_timeout: d.tcp,
            tcpfin_timeout: d.tcp_fin,
            udp_timeout: d.udp,
            syn_timeout: SYN_TIMEOUT,
            tick_ns: clock.tick_ns,
            clock_offset: clock.offset,
        };
        let (wake, wake_rx) = std::sync::mpsc::channel();
        let mut plane = Self {
            ebpf,
            config,
            table: Table::new(),
            neighbors,
            service_ids: HashMap::new(),
            dest_ids: HashMap::new(),
            dest_count: Arc::new(AtomicU32::new(0)),
            alive: Arc::new(AtomicBool::new(true)),
            rates: crate::rates::SharedRates::default(),
            resolver: crate::resolver::Handle {
                wanted: crate::resolver::Wanted::default(),
                wake,
            },
            resolver_wake: Some(wake_rx),
            written: HashMap::new(),
            slot_writes: 0,
        };
        plane.write_config()?;
        Ok(plane)
    }

    /// Attaches the program to an interface; native mode where the driver has it, generic
    /// otherwise. Returns the mode used.
    ///
    /// # Errors
    /// When the interface does not exist or refuses both modes.
    pub fn attach(&mut self, interface: &str) -> Result<XdpMode, DataPlaneError> {
        let prog = self.program()?;
        match prog.attach(interface, XdpMode::Driver) {
            Ok(_) => Ok(XdpMode::Driver),
            Err(native) => prog
                .attach(interface, XdpMode::Skb)
                .map(|_| XdpMode::Skb)
                .map_err(|e| failed(format!("attach to {interface} (native: {native})"), e)),
        }
    }

    /// Lets frames leave by `interface` through the program's devmap (a redirect to an
    /// interface rvs runs on). The FIB decides which interface a frame takes; this makes the
    /// redirect to it the fast one.
    ///
    /// # Errors
    /// When the interface does not exist or the map refuses it.
    pub fn add_tx_port(&mut self, interface: &str) -> Result<(), DataPlaneError> {
        let ifindex = nix::net::if_::if_nametoindex(interface)
            .map_err(|e| failed(format!("find interface {interface}"), e))?;
        let map = self
            .ebpf
            .map_mut(abi::maps::TX_PORTS)
            .ok_or_else(|| failed("find map rvs_tx_ports", "missing"))?;
        let mut ports =
            aya::maps::DevMapHash::try_from(map).map_err(|e| failed("open map rvs_tx_ports", e))?;
        ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| failed(format!("add {interface} to rvs_tx_ports"), e))
    }

    /// A sweeper on the plane's maps (rvsd's plane runs one every [`SWEEP_PERIOD`]).
    ///
    /// # Errors
    /// When the maps cannot be opened again by id.
    pub fn sweeper(&self) -> Result<Sweeper, DataPlaneError> {
        use aya::maps::IterableMap;
        let map = |name: &str| {
            self.ebpf
                .map(name)
                .ok_or_else(|| failed(format!("find map {name}"), "missing"))
        };
        let id = |data: &aya::maps::MapData, name: &str| {
            data.info()
                .map(|i| i.id())
                .map_err(|e| failed(format!("inspect map {name}"), e))
        };
        let conns = BpfHashMap::<_, abi::ConnKey, abi::Conn>::try_from(map(abi::maps::CONNS)?)
            .map_err(|e| failed("open map rvs_conns", e))?;
        let conns4 = BpfHashMap::<_, abi::ConnKey4, abi::Conn>::try_from(map(abi::maps::CONNS4)?)
            .map_err(|e| failed("open map rvs_conns4", e))?;
        let counts = Array::<_, abi::Count>::try_from(map(abi::maps::COUNTS)?)
            .map_err(|e| failed("open map rvs_counts", e))?;
        let config = Array::<_, abi::Config>::try_from(map(abi::maps::CONFIG)?)
            .map_err(|e| failed("open map rvs_config", e))?;
        let dests = Array::<_, abi::Dest>::try_from(map(abi::maps::DESTS)?)
            .map_err(|e| failed("open map rvs_dests", e))?;
        let stats = PerCpuArray::<_, abi::Stat>::try_from(map(abi::maps::STATS)?)
            .map_err(|e| failed("open map rvs_stats", e))?;
        Sweeper::open(
            crate::sweep::MapIds {
                conns: id(conns.map(), abi::maps::CONNS)?,
                conns4: id(conns4.map(), abi::maps::CONNS4)?,
                counts: id(counts.map(), abi::maps::COUNTS)?,
                config: id(config.map(), abi::maps::CONFIG)?,
                dests: id(dests.map(), abi::maps::DESTS)?,
                stats: id(stats.map(), abi::maps::STATS)?,
            },
            Arc::clone(&self.dest_count),
            Arc::clone(&self.rates),
        )
        .map_err(|e| failed("open the sweeper's maps", e))
    }

    /// Writes service `id`'s region of a ring or Maglev map (`per` slots a service), only the
    /// slots that differ from what it holds.
    fn write_slots(
        &mut self,
        map: &'static str,
        id: u32,
        per: u32,
        values: &[u32],
    ) -> Result<(), DataPlaneError> {
        let moved = crate::slots::changed(self.written.get(&(map, id)).map(Vec::as_slice), values);
        if moved.is_empty() {
            return Ok(());
        }
        let mut array = self.array::<u32>(map)?;
        for slot in &moved {
            let index = id * per + u32::try_from(*slot).unwrap_or(0);
            array
                .set(index, values[*slot], 0)
                .map_err(|e| failed(format!("write {map}"), e))?;
        }
        self.slot_writes += moved.len() as u64;
        self.written.insert((map, id), values.to_vec());
        Ok(())
    }

    /// Ring and Maglev slots written since the program was loaded.
    #[must_use]
    pub const fn slot_writes(&self) -> u64 {
        self.slot_writes
    }

    /// The next-hop resolver, on its own handle to the dest map (once: it takes the bell).
    ///
    /// # Errors
    /// When the map cannot be opened again by id, or the resolver was taken already.
    pub fn resolver(&mut self) -> Result<crate::resolver::Resolver, DataPlaneError> {
        use aya::maps::IterableMap;
        let wake = self
            .resolver_wake
            .take()
            .ok_or_else(|| failed("start the next-hop resolver", "it runs already"))?;
        let dests = self
            .ebpf
            .map(abi::maps::DESTS)
            .ok_or_else(|| failed("find map rvs_dests", "missing"))?;
        let dests =
            Array::<_, abi::Dest>::try_from(dests).map_err(|e| failed("open map rvs_dests", e))?;
        let id = dests
            .map()
            .info()
            .map(|i| i.id())
            .map_err(|e| failed("inspect map rvs_dests", e))?;
        crate::resolver::Resolver::open(id, Arc::clone(&self.resolver.wanted), wake)
            .map_err(|e| failed("open the resolver's map", e))
    }

    /// The loaded program (for BPF_PROG_TEST_RUN in tests).
    ///
    /// # Errors
    /// Never once loaded.
    pub fn program(&mut self) -> Result<&mut Xdp, DataPlaneError> {
        self.ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| failed("find the XDP program", PROGRAM))?
            .try_into()
            .map_err(|e| failed("find the XDP program", e))
    }

    fn write_config(&mut self) -> Result<(), DataPlaneError> {
        let config = self.config;
        self.array::<abi::Config>(abi::maps::CONFIG)?
            .set(0, config, 0)
            .map_err(|e| failed("write rvs_config", e))
    }

    fn update_entry<V: aya::Pod + PartialEq>(
        &mut self,
        name: &str,
        id: u32,
        change: impl FnOnce(&mut V),
    ) -> Result<(), DataPlaneError> {
        let mut map = self.array::<V>(name)?;
        let Ok(old) = map.get(&id, 0) else {
            return Ok(());
        };
        let mut new = old;
        change(&mut new);
        if new != old {
            map.set(id, new, 0)
                .map_err(|e| failed(format!("write {name}"), e))?;
        }
        Ok(())
    }

    fn array<V: aya::Pod>(
        &mut self,
        name: &str,
    ) -> Result<Array<&mut aya::maps::MapData, V>, DataPlaneError> {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| failed(format!("find map {name}"), "missing"))?;
        Array::try_from(map).map_err(|e| failed(format!("open map {name}"), e))
    }

    fn services_map(
        &mut self,
    ) -> Result<BpfHashMap<&mut aya::maps::MapData, abi::SvcKey, abi::Svc>, DataPlaneError> {
        let map = self
            .ebpf
            .map_mut(abi::maps::SERVICES)
            .ok_or_else(|| failed("find map rvs_services", "missing"))?;
        BpfHashMap::try_from(map).map_err(|e| failed("open map rvs_services", e))
    }

    fn svc_key(key: &ServiceKey) -> Option<abi::SvcKey> {
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

    /// Rewrites everything the program knows of one service: its key, dests and ring.
    fn sync_service(&mut self, key: ServiceKey) -> Result<(), DataPlaneError> {
        let Some(sk) = Self::svc_key(&key) else {
            return Ok(());
        };
        // Dests that left the service (or all of a removed one) keep their entries for their
        // open flows but are no longer available to persistence templates.
        let gone: Vec<u32> = self
            .dest_ids
            .iter()
            .filter(|((k, a), _)| {
                *k == key
                    && self
                        .table
                        .service(&key)
                        .is_none_or(|s| !s.dests().iter().any(|d| d.addr() == *a))
            })
            .map(|(_, id)| *id)
            .collect();
        for id in gone {
            self.update_entry(abi::maps::DESTS, id, |d: &mut abi::Dest| d.available = 0)?;
            self.resolver.forget(id);
        }
        let Some(service) = self.table.service(&key) else {
            // Removed: forget the key and empty its ring (open flows keep their dests).
            if let Some(id) = self.service_ids.remove(&key) {
                let _ = self.services_map()?.remove(&sk);
                self.write_slots(abi::maps::RING, id, abi::RING_SIZE, &[0; ring::SIZE])?;
            }
            return Ok(());
        };
        let dests: Vec<(SocketAddr, ForwardMethod, u32, (u32, u32))> = service
            .dests()
            .iter()
            .map(|d| {
                let thresholds = (d.config.u_threshold, d.config.l_threshold);
                (d.addr(), d.config.forward, d.weight(), thresholds)
            })
            .collect();
        let persistence = service.config().persistence;
        let sched_flags = service.config().sched_flags;
        let pick = tables::pick_mode(service);
        let answers = tables::answers(service, pick);
        let id = match self.service_ids.get(&key) {
            Some(id) => *id,
            None => {
                let used: std::collections::HashSet<u32> =
                    self.service_ids.values().copied().collect();
                let id = (0..abi::MAX_SERVICES)
                    .find(|i| !used.contains(i))
                    .ok_or_else(|| failed("add a service", "the service map is full"))?;
                self.service_ids.insert(key, id);
                id
            }
        };
        for (addr, forward, weight, (u_threshold, l_threshold)) in dests {
            let dest_id = match self.dest_ids.get(&(key, addr)) {
                Some(d) => *d,
                None => {
                    let d = self.dest_count.load(Ordering::Acquire);
                    if d >= abi::MAX_DESTS {
                        return Err(failed("add a dest", "the dest map is full"));
                    }
                    self.dest_count.store(d + 1, Ordering::Release);
                    self.dest_ids.insert((key, addr), d);
                    d
                }
            };
            // The program asks the kernel's FIB for the next hop; this MAC is its fallback
            // where the FIB helper answers nothing (forwarding off on the interface).
            // The resolver keeps it current (and resolves it where the kernel has none yet).
            let mac = self.neighbors.mac(addr.ip()).unwrap_or_else(|| {
                tracing::debug!(real_server = %addr.ip(), "no neighbour entry yet: resolving it");
                [0; 6]
            });
            self.resolver.want(dest_id, addr.ip());
            let (method, tun_type, tun_port, tun_flags) = tables::forwarding(forward);
            let entry = abi::Dest {
                addr: addr::to_map(addr.ip()).0,
                port: addr.port().to_be(),
                method,
                available: 1,
                mac,
                weight: u16::try_from(weight).unwrap_or(u16::MAX),
                u_threshold,
                l_threshold,
                tun_type,
                tun_flags,
                tun_port,
                ..abi::Dest::default()
            };
            let mut dest_map = self.array::<abi::Dest>(abi::maps::DESTS)?;
            let old = dest_map.get(&dest_id, 0).unwrap_or_default();
            dest_map
                .set(dest_id, entry, 0)
                .map_err(|e| failed("write rvs_dests", e))?;
            // An edit that drops or raises the upper threshold clears the overload flag, as
            // the kernel's does.
            if u_threshold == 0 || u_threshold > old.u_threshold {
                self.update_entry(abi::maps::COUNTS, dest_id, |c: &mut abi::Count| {
                    c.overloaded = 0
                })?;
            }
            if let Ok(mut book) = self.rates.lock() {
                book.own(dest_id, id);
            }
            tracing::debug!(service = %key, dest = %addr, dest_id, method, "dest written");
        }
        self.resolver.ring();
        let ids: HashMap<SocketAddr, u32> = self
            .dest_ids
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|((_, a), id)| (*a, *id))
            .collect();
        let slot_of = |answer: &Option<SocketAddr>| {
            answer
                .and_then(|a| ids.get(&a).map(|id| id + 1))
                .unwrap_or(0)
        };
        let (slots, len) = match pick {
            p if p == abi::PICK_CURSOR || tables::scans(p) => {
                let mut slots: Vec<u32> = answers.iter().map(slot_of).collect();
                let len = u16::try_from(slots.len()).unwrap_or(0);
                slots.resize(ring::SIZE, 0);
                (slots, len)
            }
            abi::PICK_MH => {
                let mut len = 0;
                if sched_flags.fallback() {
                    len |= abi::MH_FALLBACK;
                }
                if sched_flags.port() {
                    len |= abi::MH_PORT;
                }
                let table: Vec<u32> = answers.iter().map(slot_of).collect();
                self.write_slots(abi::maps::MH, id, abi::MH_SIZE, &table)?;
                (vec![0; ring::SIZE], len)
            }
            _ => (answers.iter().map(slot_of).collect(), 0),
        };
        let (persist_timeout, persist_mask) = match persistence {
            Some(Persistence { timeout, netmask }) => (timeout, addr::mask(netmask)),
            None => (0, [0; 4]),
        };
        // A changed sequence starts from its beginning, as the kernel's wrr does.
        self.array::<u32>(abi::maps::CURSORS)?
            .set(id, 0, 0)
            .map_err(|e| failed("write rvs_cursors", e))?;
        self.write_slots(abi::maps::RING, id, abi::RING_SIZE, &slots)?;
        self.services_map()?
            .insert(
                sk,
                abi::Svc {
                    id,
                    pick,
                    len,
                    persist_timeout,
                    persist_mask,
                },
                0,
            )
            .map_err(|e| failed("write rvs_services", e))?;
        Ok(())
    }

    /// Zeroes the traffic counters and rates of these dest indexes (and their services' rates).
    fn zero_stats(&mut self, ids: &[u32]) -> Result<(), DataPlaneError> {
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| failed(what, e))?;
        let map = self
            .ebpf
            .map_mut(abi::maps::STATS)
            .ok_or_else(|| failed("find map rvs_stats", "missing"))?;
        let mut per_cpu = PerCpuArray::<_, abi::Stat>::try_from(map)
            .map_err(|e| failed("open map rvs_stats", e))?;
        for id in ids {
            let zeros = aya::maps::PerCpuValues::try_from(vec![abi::Stat::default(); cpus])
                .map_err(|e| failed("zero rvs_stats", e))?;
            per_cpu
                .set(*id, zeros, 0)
                .map_err(|e| failed("zero rvs_stats", e))?;
        }
        if let Ok(mut book) = self.rates.lock() {
            book.zero(ids);
        }
        Ok(())
    }
}

impl DataPlane for XdpPlane {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, changes: &[Change]) -> Result<(), DataPlaneError> {
        self.check_changes(changes)
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), DataPlaneError> {
        self.check(changes)?;
        let mut touched = Vec::new();
        for c in changes {
            // A dest that joins again starts from zero, as a new IPVS dest does; -Z zeroes
            // the counters of a service's dests, or of all.
            let zero: Vec<u32> = match c {
                Change::DestAdded { service, dest } => self
                    .dest_ids
                    .get(&(*service, dest.addr))
                    .copied()
                    .into_iter()
                    .collect(),
                Change::Zeroed { service } => self
                    .dest_ids
                    .iter()
                    .filter(|((k, _), _)| service.is_none_or(|s| s == *k))
                    .map(|(_, id)| *id)
                    .collect(),
                _ => Vec::new(),
            };
            if !zero.is_empty() {
                self.zero_stats(&zero)?;
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
                self.write_config()?;
            }
        }
        for key in touched {
            self.sync_service(key)?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
        self.read_stats()
    }

    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        self.read_connections()
    }

    fn counters(&self) -> Result<Vec<rvs_core::PlaneCounter>, DataPlaneError> {
        self.read_verdicts()
    }
}

#[cfg(test)]
mod message_tests {
    #[test]
    fn a_build_without_the_object_says_so_in_one_sentence() {
        let e = super::without_object(crate::MISSING_OBJECT.to_owned());
        assert_eq!(
            e.to_string(),
            "the xdp data plane cannot run: this rvs was built without clang and libbpf-dev \
             (apt-get install clang libbpf-dev, then rebuild); use --dataplane proxy"
        );
    }
}
