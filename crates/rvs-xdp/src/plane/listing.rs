//! The plane's live connections and persistence templates (`-Lc`), read on map handles of
//! their own and a view of the table the plane publishes after every change, so a listing
//! walks the connection tables without the plane or the director's lock.

use super::maps::Maps;
use super::writer::MapWriter;
use crate::addr;
use crate::clock::monotonic_ns;
use crate::timeouts::state_timeout;
use aya::maps::{HashMap as BpfHashMap, MapData};
use rvs_bpf_abi as abi;
use rvs_core::{
    ConnState, ConnVirtual, ConnectionEntry, ConnectionReader, DataPlaneError, Protocol, ServiceKey,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

/// What a listing needs of the table: the timeouts, each dest index's real server and each
/// persistent service's template timeout.
#[derive(Debug, Default, Clone)]
pub(super) struct ListingView {
    config: abi::Config,
    dests: HashMap<u32, SocketAddr>,
    persistence: HashMap<ServiceKey, u32>,
}

impl ListingView {
    /// The view of what a writer has written.
    pub(super) fn of(writer: &MapWriter<impl Maps>) -> Self {
        Self {
            config: writer.config,
            dests: writer.layout.dest_addrs(),
            persistence: writer
                .table
                .services()
                .filter_map(|s| Some((s.key(), s.config().persistence?.timeout)))
                .collect(),
        }
    }
}

/// The connection tables and the view to read them with.
pub struct Listing {
    pub(super) conns: BpfHashMap<MapData, abi::ConnKey, abi::Conn>,
    pub(super) conns4: BpfHashMap<MapData, abi::ConnKey4, abi::Conn>,
    pub(super) templates: BpfHashMap<MapData, abi::ConnKey, abi::Tmpl>,
    view: RwLock<ListingView>,
}

impl Listing {
    /// A listing over these maps, with an empty view.
    pub(super) fn new(
        conns: BpfHashMap<MapData, abi::ConnKey, abi::Conn>,
        conns4: BpfHashMap<MapData, abi::ConnKey4, abi::Conn>,
        templates: BpfHashMap<MapData, abi::ConnKey, abi::Tmpl>,
    ) -> Self {
        Self {
            conns,
            conns4,
            templates,
            view: RwLock::new(ListingView::default()),
        }
    }

    /// Replaces the view (the plane calls it after every change it applies).
    pub(super) fn publish(&self, view: ListingView) {
        *self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = view;
    }

    fn view(&self) -> ListingView {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ConnectionReader for Listing {
    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let view = self.view();
        let now = monotonic_ns();
        let mut flows = entries(&self.conns4);
        flows.extend(entries(&self.conns));
        let mut out: Vec<ConnectionEntry> = flows
            .into_iter()
            .filter_map(|(k, v)| {
                let age = now.saturating_sub(v.last_ns) / 1_000_000_000;
                let timeout = u64::from(state_timeout(&view.config, v.state));
                let expires_secs = timeout.checked_sub(age).filter(|left| *left > 0)?;
                Some(ConnectionEntry {
                    client: SocketAddr::new(addr::from_map(&k.saddr, k.af), u16::from_be(k.sport)),
                    virtual_: ConnVirtual::Addr {
                        protocol: protocol_of(k.proto),
                        addr: SocketAddr::new(
                            addr::from_map(&k.daddr, k.af),
                            u16::from_be(k.dport),
                        ),
                    },
                    dest: *view.dests.get(&v.dest)?,
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
        out.extend(templates(&self.templates, &view, now));
        Ok(out)
    }
}

/// The live persistence templates with their dest and seconds left, as IPVS lists them:
/// client network with port 0, state NONE.
fn templates(
    map: &BpfHashMap<MapData, abi::ConnKey, abi::Tmpl>,
    view: &ListingView,
    now: u64,
) -> Vec<ConnectionEntry> {
    map.iter()
        .filter_map(Result::ok)
        .filter_map(|(k, v)| {
            let protocol = protocol_of(k.proto);
            let vip = SocketAddr::new(addr::from_map(&k.daddr, k.af), u16::from_be(k.dport));
            let key = ServiceKey::Inet {
                protocol,
                addr: vip,
            };
            let timeout = u64::from(*view.persistence.get(&key)?);
            let age = now.saturating_sub(v.last_ns) / 1_000_000_000;
            let left = timeout.checked_sub(age).filter(|left| *left > 0)?;
            Some(ConnectionEntry {
                client: SocketAddr::new(addr::from_map(&k.saddr, k.af), 0),
                virtual_: ConnVirtual::Addr {
                    protocol,
                    addr: vip,
                },
                dest: *view.dests.get(&v.dest)?,
                state: ConnState::None,
                expires_secs: left,
                pe_name: None,
                pe_data: None,
            })
        })
        .collect()
}

/// Every entry of one connection map, keys widened to [`abi::ConnKey`] (an entry that goes
/// away while the map is walked is skipped, as the kernel's LRU may evict any).
fn entries<K: aya::Pod + Into<abi::ConnKey>>(
    conns: &BpfHashMap<MapData, K, abi::Conn>,
) -> Vec<(abi::ConnKey, abi::Conn)> {
    conns
        .iter()
        .filter_map(Result::ok)
        .map(|(k, v)| (k.into(), v))
        .collect()
}

/// The protocol of a map key (the program keys TCP, UDP and SCTP).
fn protocol_of(proto: u8) -> Protocol {
    match proto {
        6 => Protocol::Tcp,
        132 => Protocol::Sctp,
        _ => Protocol::Udp,
    }
}
