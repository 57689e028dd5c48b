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
    Change, ConnCounts, ConnState, ConnVirtual, ConnectionEntry, Counters, DataPlane,
    DataPlaneError, DestStats, ForwardMethod, Persistence, Protocol, Rates, SchedulerKind,
    ServiceKey, ServiceStats, Table, Tunnel, TunnelCsum, TunnelKind,
};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "xdp";
/// The kernel's SYN_RECV timeout, seconds.
const SYN_TIMEOUT: u32 = 60;
const PROGRAM: &str = "rvs_xdp";

/// The director's own addresses, written into the program's config.
#[derive(Debug, Clone, Copy)]
pub struct DirectorAddr {
    /// The outer source address of IPv4 tunnels.
    pub tunnel_src: Ipv4Addr,
    /// The outer source address of IPv6 tunnels, if the director has a global one.
    pub tunnel_src6: Option<Ipv6Addr>,
}

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
}

impl Drop for XdpPlane {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

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

impl DirectorAddr {
    /// The first IPv4 address and first global IPv6 address of an interface.
    ///
    /// # Errors
    /// When the interface does not exist or has no IPv4 address.
    pub fn of_interface(interface: &str) -> Result<Self, DataPlaneError> {
        let addrs: Vec<_> = nix::ifaddrs::getifaddrs()
            .map_err(|e| failed("list interface addresses", e))?
            .filter(|a| a.interface_name == interface)
            .collect();
        let tunnel_src6 = addrs.iter().find_map(|a| {
            let ip = a.address?.as_sockaddr_in6()?.ip();
            // Not link-local (fe80::/10): a tunnel's outer source must be routable.
            (ip.segments()[0] & 0xffc0 != 0xfe80 && !ip.is_loopback()).then_some(ip)
        });
        let tunnel_src = addrs
            .iter()
            .find_map(|a| {
                a.address
                    .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
            })
            .ok_or_else(|| {
                failed(
                    format!("find an IPv4 address on {interface}"),
                    "none is configured",
                )
            })?;
        Ok(Self {
            tunnel_src,
            tunnel_src6,
        })
    }
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
    ) -> Result<Self, DataPlaneError> {
        let first = interfaces.first().ok_or_else(|| {
            unsupported(
                "run without an interface".to_owned(),
                "--interface IF (repeatable)",
            )
        })?;
        let mut plane = Self::load(
            DirectorAddr::of_interface(first)?,
            Box::new(crate::neighbors::KernelNeighbors),
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
        let object = crate::object().map_err(|e| unsupported(e, "--dataplane proxy"))?;
        let mut ebpf = Ebpf::load(object).map_err(|e| failed("load the BPF object", e))?;
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
        };
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
            .map_mut("rvs_tx_ports")
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
        let conns = BpfHashMap::<_, abi::ConnKey, abi::Conn>::try_from(map("rvs_conns")?)
            .map_err(|e| failed("open map rvs_conns", e))?;
        let counts = Array::<_, abi::Count>::try_from(map("rvs_counts")?)
            .map_err(|e| failed("open map rvs_counts", e))?;
        let config = Array::<_, abi::Config>::try_from(map("rvs_config")?)
            .map_err(|e| failed("open map rvs_config", e))?;
        let dests = Array::<_, abi::Dest>::try_from(map("rvs_dests")?)
            .map_err(|e| failed("open map rvs_dests", e))?;
        let stats = PerCpuArray::<_, abi::Stat>::try_from(map("rvs_stats")?)
            .map_err(|e| failed("open map rvs_stats", e))?;
        Sweeper::open(
            crate::sweep::MapIds {
                conns: id(conns.map(), "rvs_conns")?,
                counts: id(counts.map(), "rvs_counts")?,
                config: id(config.map(), "rvs_config")?,
                dests: id(dests.map(), "rvs_dests")?,
                stats: id(stats.map(), "rvs_stats")?,
            },
            Arc::clone(&self.dest_count),
            Arc::clone(&self.rates),
        )
        .map_err(|e| failed("open the sweeper's maps", e))
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
        self.array::<abi::Config>("rvs_config")?
            .set(0, config, 0)
            .map_err(|e| failed("write rvs_config", e))
    }

    /// The conn table's entries that have not expired, with their age in seconds.
    fn live_conns(&self) -> Vec<(abi::ConnKey, abi::Conn, u64)> {
        let Some(map) = self.ebpf.map("rvs_conns") else {
            return Vec::new();
        };
        let Ok(conns) = BpfHashMap::<_, abi::ConnKey, abi::Conn>::try_from(map) else {
            return Vec::new();
        };
        let now = monotonic_ns();
        conns
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                let age = now.saturating_sub(v.last_ns) / 1_000_000_000;
                let timeout = u64::from(self.timeout_of(v.state));
                timeout
                    .checked_sub(age)
                    .filter(|left| *left > 0)
                    .map(|left| (k, v, left))
            })
            .collect()
    }

    /// The live persistence templates with their dest and seconds left, read from
    /// `rvs_templates`, as IPVS lists them: client network with port 0, state NONE.
    fn live_templates(&self) -> Vec<ConnectionEntry> {
        let Some(map) = self.ebpf.map("rvs_templates") else {
            return Vec::new();
        };
        let Ok(templates) = BpfHashMap::<_, abi::ConnKey, abi::Tmpl>::try_from(map) else {
            return Vec::new();
        };
        let by_id: HashMap<u32, SocketAddr> =
            self.dest_ids.iter().map(|((_, a), id)| (*id, *a)).collect();
        let now = monotonic_ns();
        templates
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                let protocol = protocol_of(k.proto);
                let vip = SocketAddr::new(addr::from_map(&k.daddr, k.af), u16::from_be(k.dport));
                let service = self.table.service(&ServiceKey::Inet {
                    protocol,
                    addr: vip,
                })?;
                let timeout = u64::from(service.config().persistence?.timeout);
                let age = now.saturating_sub(v.last_ns) / 1_000_000_000;
                let left = timeout.checked_sub(age).filter(|left| *left > 0)?;
                Some(ConnectionEntry {
                    client: SocketAddr::new(addr::from_map(&k.saddr, k.af), 0),
                    virtual_: ConnVirtual::Addr {
                        protocol,
                        addr: vip,
                    },
                    dest: *by_id.get(&v.dest)?,
                    state: ConnState::None,
                    expires_secs: left,
                    pe_name: None,
                    pe_data: None,
                })
            })
            .collect()
    }

    fn timeout_of(&self, state: u8) -> u32 {
        state_timeout(&self.config, state)
    }

    /// Rewrites entry `id` of array map `name` as `change` makes it, if that changes it.
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
            .map_mut("rvs_services")
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
            self.update_entry("rvs_dests", id, |d: &mut abi::Dest| d.available = 0)?;
        }
        let Some(service) = self.table.service(&key) else {
            // Removed: forget the key and empty its ring (open flows keep their dests).
            if let Some(id) = self.service_ids.remove(&key) {
                let _ = self.services_map()?.remove(&sk);
                let mut ringmap = self.array::<u32>("rvs_ring")?;
                for slot in 0..abi::RING_SIZE {
                    let _ = ringmap.set(id * abi::RING_SIZE + slot, 0, 0);
                }
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
        let pick = match service.config().scheduler {
            SchedulerKind::Rr | SchedulerKind::Wrr => abi::PICK_CURSOR,
            SchedulerKind::Fo => abi::PICK_FO,
            SchedulerKind::Twos => abi::PICK_TWOS,
            SchedulerKind::Lblc => abi::PICK_LBLC,
            SchedulerKind::Mh => abi::PICK_MH,
            SchedulerKind::Lblcr => abi::PICK_LBLCR,
            SchedulerKind::Sh if service.config().sched_flags.port() => abi::PICK_SRC_PORT,
            SchedulerKind::Sh => abi::PICK_SRC,
            SchedulerKind::Dh => abi::PICK_DST,
            SchedulerKind::Lc => abi::PICK_LC,
            SchedulerKind::Wlc => abi::PICK_WLC,
            SchedulerKind::Sed => abi::PICK_SED,
            SchedulerKind::Nq => abi::PICK_NQ,
            SchedulerKind::Ovf => abi::PICK_OVF,
        };
        // The core's answers, by address: a cycle of picks, or one answer per bucket.
        let answers: Vec<Option<SocketAddr>> = match pick {
            abi::PICK_CURSOR => ring::sequence(service).into_iter().map(Some).collect(),
            // The scans walk the dests in the kernel's list order.
            abi::PICK_LC
            | abi::PICK_WLC
            | abi::PICK_SED
            | abi::PICK_NQ
            | abi::PICK_OVF
            | abi::PICK_FO
            | abi::PICK_TWOS
            | abi::PICK_LBLC
            | abi::PICK_LBLCR => service
                .dests()
                .iter()
                .take(ring::SIZE)
                .map(|d| Some(d.addr()))
                .collect(),
            // The kernel's mh table, by dest address.
            abi::PICK_MH => rvs_core::sched::mh_table(service.dests())
                .into_iter()
                .map(|i| {
                    i.and_then(|i| service.dests().get(i as usize))
                        .map(|d| d.addr())
                })
                .collect(),
            _ => ring::buckets(service),
        };
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
            let mac = self.neighbors.mac(addr.ip()).unwrap_or_else(|| {
                tracing::warn!(
                    real_server = %addr.ip(),
                    "no neighbour entry yet: until the kernel's FIB has a next hop for it, \
                     direct-routed and tunnelled packets to it are dropped (NAT ones go to the kernel)"
                );
                [0; 6]
            });
            let method = match forward {
                ForwardMethod::Tunnel(_) => abi::FWD_TUNNEL,
                ForwardMethod::Masq => abi::FWD_MASQ,
                ForwardMethod::Route => abi::FWD_ROUTE,
            };
            let (tun_type, tun_port) = match forward {
                ForwardMethod::Tunnel(Tunnel {
                    kind: TunnelKind::Gue { port },
                    ..
                }) => (abi::TUN_GUE, port.to_be()),
                ForwardMethod::Tunnel(Tunnel {
                    kind: TunnelKind::Gre,
                    ..
                }) => (abi::TUN_GRE, 0),
                _ => (abi::TUN_IPIP, 0),
            };
            let tun_flags = match forward {
                ForwardMethod::Tunnel(Tunnel {
                    csum: TunnelCsum::Csum,
                    ..
                }) => abi::TUN_CSUM,
                _ => 0,
            };
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
            let mut dest_map = self.array::<abi::Dest>("rvs_dests")?;
            let old = dest_map.get(&dest_id, 0).unwrap_or_default();
            dest_map
                .set(dest_id, entry, 0)
                .map_err(|e| failed("write rvs_dests", e))?;
            // An edit that drops or raises the upper threshold clears the overload flag, as
            // the kernel's does.
            if u_threshold == 0 || u_threshold > old.u_threshold {
                self.update_entry("rvs_counts", dest_id, |c: &mut abi::Count| c.overloaded = 0)?;
            }
            if let Ok(mut book) = self.rates.lock() {
                book.own(dest_id, id);
            }
            tracing::debug!(service = %key, dest = %addr, dest_id, method, "dest written");
        }
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
            abi::PICK_CURSOR
            | abi::PICK_LC
            | abi::PICK_WLC
            | abi::PICK_SED
            | abi::PICK_NQ
            | abi::PICK_OVF
            | abi::PICK_FO
            | abi::PICK_TWOS
            | abi::PICK_LBLC
            | abi::PICK_LBLCR => {
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
                let mut mh = self.array::<u32>("rvs_mh")?;
                for (slot, value) in table.iter().enumerate() {
                    let index = id * abi::MH_SIZE + u32::try_from(slot).unwrap_or(0);
                    mh.set(index, *value, 0)
                        .map_err(|e| failed("write rvs_mh", e))?;
                }
                (vec![0; ring::SIZE], len)
            }
            _ => (answers.iter().map(slot_of).collect(), 0),
        };
        let (persist_timeout, persist_mask) = match persistence {
            Some(Persistence { timeout, netmask }) => (timeout, addr::mask(netmask)),
            None => (0, [0; 4]),
        };
        // A changed sequence starts from its beginning, as the kernel's wrr does.
        self.array::<u32>("rvs_cursors")?
            .set(id, 0, 0)
            .map_err(|e| failed("write rvs_cursors", e))?;
        let mut ringmap = self.array::<u32>("rvs_ring")?;
        for (slot, value) in slots.iter().enumerate() {
            let index = id * abi::RING_SIZE + u32::try_from(slot).unwrap_or(0);
            ringmap
                .set(index, *value, 0)
                .map_err(|e| failed("write rvs_ring", e))?;
        }
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

    /// Whether the program can forward to a real server the way `dest` asks.
    fn check_dest(
        &self,
        service: &ServiceKey,
        dest: &rvs_core::DestConfig,
    ) -> Result<(), DataPlaneError> {
        let ServiceKey::Inet {
            protocol,
            addr: vip,
        } = service
        else {
            return Ok(()); // fwmark services are refused on their own
        };
        if vip.is_ipv4() != dest.addr.is_ipv4() {
            return Err(unsupported(
                format!(
                    "forward service {service} to real server {} of the other address family",
                    dest.addr
                ),
                "a real server of the service's family",
            ));
        }
        match dest.forward {
            ForwardMethod::Tunnel(Tunnel {
                csum: TunnelCsum::RemCsum,
                ..
            }) => Err(unsupported(
                format!(
                    "tunnel to real server {} with remote checksum offload (--tun-remcsum) yet",
                    dest.addr
                ),
                "--tun-csum or --tun-nocsum",
            )),
            ForwardMethod::Tunnel(_) if dest.addr.is_ipv6() && self.config.tunnel_src6 == [0; 4] => {
                Err(unsupported(
                    format!(
                        "tunnel to real server {} without a global IPv6 address on the director's interface",
                        dest.addr
                    ),
                    "add one to the first --interface",
                ))
            }
            ForwardMethod::Masq if *protocol == Protocol::Sctp && dest.addr.port() != vip.port() => {
                Err(unsupported(
                    format!(
                        "masquerade SCTP service {service} to real server {} on another port (SCTP's CRC32c covers the port)",
                        dest.addr
                    ),
                    "the service's own port on the real server",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Zeroes the traffic counters and rates of these dest indexes (and their services' rates).
    fn zero_stats(&mut self, ids: &[u32]) -> Result<(), DataPlaneError> {
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| failed(what, e))?;
        let map = self
            .ebpf
            .map_mut("rvs_stats")
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

    /// A dest's traffic counters, summed over CPUs.
    fn dest_counters(&self, id: u32) -> Counters {
        let Some(map) = self.ebpf.map("rvs_stats") else {
            return Counters::default();
        };
        let Ok(per_cpu) = PerCpuArray::<_, abi::Stat>::try_from(map) else {
            return Counters::default();
        };
        per_cpu
            .get(&id, 0)
            .map_or_else(|_| Counters::default(), |v| crate::rates::counters_of(&v))
    }
}

impl DataPlane for XdpPlane {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, changes: &[Change]) -> Result<(), DataPlaneError> {
        // Dests each service would hold: a ring (and a scan) covers at most RING_SIZE.
        let mut added: HashMap<ServiceKey, usize> = HashMap::new();
        for c in changes {
            if let Change::DestAdded { service, .. } = c {
                let n = added
                    .entry(*service)
                    .or_insert_with(|| self.table.service(service).map_or(0, |s| s.dests().len()));
                *n += 1;
                if *n > ring::SIZE {
                    return Err(unsupported(
                        format!(
                            "give service {service} more than {} real servers",
                            ring::SIZE
                        ),
                        "another virtual service, or --dataplane proxy",
                    ));
                }
            }
        }
        for c in changes {
            match c {
                Change::ServiceAdded(s) | Change::ServiceEdited(s) => match s.key {
                    ServiceKey::Inet { addr, .. } if addr.port() != 0 => {}
                    ServiceKey::FwMark { mark, .. } => {
                        return Err(unsupported(
                            format!("serve firewall-mark service FWM {mark} yet"),
                            "an address service",
                        ))
                    }
                    other => {
                        return Err(unsupported(
                            format!("serve {other} on every port (port 0)"),
                            "a service on one port, or --dataplane proxy",
                        ))
                    }
                },
                Change::DestAdded { service, dest } | Change::DestEdited { service, dest } => {
                    self.check_dest(service, dest)?;
                }
                _ => {}
            }
        }
        Ok(())
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

    fn stats(&self) -> Vec<ServiceStats> {
        let mut counts: HashMap<u32, ConnCounts> = HashMap::new();
        for (_, v, _) in self.live_conns() {
            let c = counts.entry(v.dest).or_default();
            if v.state == abi::state::ESTABLISHED {
                c.active += 1;
            } else {
                c.inactive += 1;
            }
        }
        let book = self.rates.lock().ok();
        let rates_of = |f: &dyn Fn(&crate::rates::RateBook) -> Rates| {
            book.as_deref().map(f).unwrap_or_default()
        };
        self.table
            .services()
            .map(|s| {
                let dests: Vec<DestStats> = s
                    .dests()
                    .iter()
                    .map(|d| {
                        let id = self.dest_ids.get(&(s.key(), d.addr())).copied();
                        DestStats {
                            addr: d.addr(),
                            conns: id
                                .and_then(|id| counts.get(&id))
                                .copied()
                                .unwrap_or_default(),
                            counters: id.map(|id| self.dest_counters(id)).unwrap_or_default(),
                            rates: id.map(|id| rates_of(&|b| b.dest(id))).unwrap_or_default(),
                        }
                    })
                    .collect();
                let mut total = Counters::default();
                for d in &dests {
                    total += d.counters;
                }
                let id = self.service_ids.get(&s.key()).copied();
                ServiceStats {
                    service: s.key(),
                    counters: total,
                    rates: id
                        .map(|id| rates_of(&|b| b.service(id)))
                        .unwrap_or_default(),
                    dests,
                }
            })
            .collect()
    }

    fn connections(&self) -> Vec<ConnectionEntry> {
        let by_id: HashMap<u32, SocketAddr> =
            self.dest_ids.iter().map(|((_, a), id)| (*id, *a)).collect();
        let mut entries: Vec<ConnectionEntry> = self
            .live_conns()
            .into_iter()
            .filter_map(|(k, v, expires_secs)| {
                Some(ConnectionEntry {
                    client: SocketAddr::new(addr::from_map(&k.saddr, k.af), u16::from_be(k.sport)),
                    virtual_: ConnVirtual::Addr {
                        protocol: protocol_of(k.proto),
                        addr: SocketAddr::new(
                            addr::from_map(&k.daddr, k.af),
                            u16::from_be(k.dport),
                        ),
                    },
                    dest: *by_id.get(&v.dest)?,
                    state: match v.state {
                        abi::state::SYN_RECV => ConnState::SynRecv,
                        abi::state::ESTABLISHED => ConnState::Established,
                        abi::state::FIN_WAIT => ConnState::FinWait,
                        abi::state::CLOSE => ConnState::Close,
                        abi::state::UDP => ConnState::Udp,
                        _ => ConnState::None,
                    },
                    expires_secs,
                    pe_name: None,
                    pe_data: None,
                })
            })
            .collect();
        entries.extend(self.live_templates());
        entries
    }
}

/// The idle timeout of a connection state in seconds, as the program applies it.
pub(crate) const fn state_timeout(config: &abi::Config, state: u8) -> u32 {
    match state {
        abi::state::ESTABLISHED => config.tcp_timeout,
        abi::state::UDP => config.udp_timeout,
        abi::state::CLOSE => 10,
        abi::state::FIN_WAIT => config.tcpfin_timeout,
        _ => config.syn_timeout,
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of the program's timestamps.
pub(crate) fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The protocol of a map key (the program keys TCP, UDP and SCTP).
fn protocol_of(proto: u8) -> Protocol {
    match proto {
        6 => Protocol::Tcp,
        132 => Protocol::Sctp,
        _ => Protocol::Udp,
    }
}
