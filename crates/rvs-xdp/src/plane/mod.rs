//! The xdp plane: loads the program, keeps a mirror of the table, and writes only the map
//! entries a change touches (a service's key, its dests, its ring).

use crate::addr;
use crate::neighbors::Neighbors;
use crate::sweep::Sweeper;
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use rvs_bpf_abi as abi;
use rvs_core::{
    Change, ConnectionEntry, ConnectionReader, DataPlane, DataPlaneError, ServiceStats,
};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod aya_maps;
mod check;
mod director;
mod listing;
pub mod maps;
pub mod memory;
mod readout;
mod tables;
pub mod writer;

use aya_maps::{id_of, AyaMaps};
pub use director::DirectorAddr;
use writer::{Events, MapWriter};

const NAME: &str = "xdp";
/// The kernel's SYN_RECV timeout, seconds.
const SYN_TIMEOUT: u32 = 60;
const PROGRAM: &str = "rvs_xdp";

/// The xdp plane.
pub struct XdpPlane {
    /// The loaded object (its program; the maps are taken out into `writer`).
    ebpf: Ebpf,
    /// The mirror of the table and the maps it is written to.
    writer: MapWriter<AyaMaps>,
    neighbors: Box<dyn Neighbors>,
    /// Cleared when the plane is dropped, which stops its sweeper thread.
    alive: Arc<AtomicBool>,
    /// Rate estimators, fed by the sweeper.
    rates: crate::rates::SharedRates,
    /// The dests whose next hops the resolver keeps resolved.
    resolver: crate::resolver::Handle,
    /// The resolver's bell, until its thread starts ([`XdpPlane::for_interfaces`]).
    resolver_wake: Option<std::sync::mpsc::Receiver<()>>,
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
            Box::new(
                crate::neighbors::KernelNeighbors::open()
                    .map_err(|e| failed("read the neighbour tables", e))?,
            ),
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
        let maps = AyaMaps::take(&mut ebpf)?;
        let writer = MapWriter::new(maps, config, Arc::new(AtomicU32::new(0)))?;
        let (wake, wake_rx) = std::sync::mpsc::channel();
        Ok(Self {
            ebpf,
            writer,
            neighbors,
            alive: Arc::new(AtomicBool::new(true)),
            rates: crate::rates::SharedRates::default(),
            resolver: crate::resolver::Handle {
                wanted: crate::resolver::Wanted::default(),
                wake,
            },
            resolver_wake: Some(wake_rx),
        })
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
        self.writer
            .maps
            .tx_ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| failed(format!("add {interface} to rvs_tx_ports"), e))
    }

    /// A sweeper on the plane's maps (rvsd's plane runs one every [`SWEEP_PERIOD`]).
    ///
    /// # Errors
    /// When the maps cannot be opened again by id.
    pub fn sweeper(&self) -> Result<Sweeper, DataPlaneError> {
        let m = &self.writer.maps;
        Sweeper::open(
            crate::sweep::MapIds {
                conns: id_of(&m.listing.conns, abi::maps::CONNS)?,
                conns4: id_of(&m.listing.conns4, abi::maps::CONNS4)?,
                counts: id_of(&m.counts, abi::maps::COUNTS)?,
                config: id_of(&m.config, abi::maps::CONFIG)?,
                dests: id_of(&m.dests, abi::maps::DESTS)?,
                stats: id_of(&m.stats, abi::maps::STATS)?,
            },
            Arc::clone(&self.writer.layout.dest_count),
            Arc::clone(&self.rates),
        )
        .map_err(|e| failed("open the sweeper's maps", e))
    }

    /// Ring and Maglev slots written since the program was loaded.
    #[must_use]
    pub const fn slot_writes(&self) -> u64 {
        self.writer.slot_writes()
    }

    /// Forgets what the ring and Maglev maps hold: the next write of each service rewrites
    /// its regions whole (see [`writer::Layout::forget_slots`]).
    pub fn forget_written_slots(&mut self) {
        self.writer.layout.forget_slots();
    }

    /// The next-hop resolver, on its own handle to the dest map (once: it takes the bell).
    ///
    /// # Errors
    /// When the map cannot be opened again by id, or the resolver was taken already.
    pub fn resolver(&mut self) -> Result<crate::resolver::Resolver, DataPlaneError> {
        let wake = self
            .resolver_wake
            .take()
            .ok_or_else(|| failed("start the next-hop resolver", "it runs already"))?;
        let id = id_of(&self.writer.maps.dests, abi::maps::DESTS)?;
        crate::resolver::Resolver::open(id, Arc::clone(&self.resolver.wanted), wake)
            .map_err(|e| failed("open the resolver's map", e))
    }

    /// Tells the resolver and the rate book what a write did.
    fn heard(&self, events: &Events) {
        for id in &events.forgotten {
            self.resolver.forget(*id);
        }
        for (id, ip) in &events.wanted {
            self.resolver.want(*id, *ip);
        }
        if let Ok(mut book) = self.rates.lock() {
            for (dest, service) in &events.owned {
                book.own(*dest, *service);
            }
            if !events.zeroed.is_empty() {
                book.zero(&events.zeroed);
            }
        }
        if !events.wanted.is_empty() {
            self.resolver.ring();
        }
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
        let mut events = Events::default();
        let neighbors = &self.neighbors;
        let written = self
            .writer
            .apply(changes, &|ip| neighbors.mac(ip), &mut events);
        self.heard(&events);
        self.writer
            .maps
            .listing
            .publish(listing::ListingView::of(&self.writer));
        written
    }

    fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
        self.read_stats()
    }

    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        self.writer.maps.listing.connections()
    }

    fn connection_reader(&self) -> Option<Arc<dyn ConnectionReader>> {
        Some(Arc::clone(&self.writer.maps.listing) as Arc<dyn ConnectionReader>)
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
