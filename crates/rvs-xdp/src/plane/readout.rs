//! What the plane reads back from the program's maps: live connections and templates (`-Lc`),
//! counters and rates (`--stats`, `--rate`), ActiveConn/InActConn.

use super::XdpPlane;
use crate::addr;
use crate::clock::monotonic_ns;
use crate::timeouts::state_timeout;
use aya::maps::HashMap as BpfHashMap;
use rvs_bpf_abi as abi;
use rvs_core::{
    ConnCounts, ConnState, ConnVirtual, ConnectionEntry, Counters, DataPlaneError, DestStats,
    Protocol, Rates, ServiceKey, ServiceStats,
};
use std::collections::HashMap;
use std::net::SocketAddr;

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

    /// The conn tables' entries (IPv4 and IPv6) that have not expired, with their seconds left.
    fn live_conns(&self) -> Result<Vec<(abi::ConnKey, abi::Conn, u64)>, DataPlaneError> {
        let mut all = entries(&self.writer.maps.conns4);
        all.extend(entries(&self.writer.maps.conns));
        let now = monotonic_ns();
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| {
                let age = now.saturating_sub(v.last_ns) / 1_000_000_000;
                let timeout = u64::from(self.timeout_of(v.state));
                timeout
                    .checked_sub(age)
                    .filter(|left| *left > 0)
                    .map(|left| (k, v, left))
            })
            .collect())
    }

    /// The live persistence templates with their dest and seconds left, read from
    /// `rvs_templates`, as IPVS lists them: client network with port 0, state NONE.
    fn live_templates(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let templates = &self.writer.maps.templates;
        let by_id = self.writer.layout.dest_addrs();
        let now = monotonic_ns();
        Ok(templates
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                let protocol = protocol_of(k.proto);
                let vip = SocketAddr::new(addr::from_map(&k.daddr, k.af), u16::from_be(k.dport));
                let service = self.writer.table.service(&ServiceKey::Inet {
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
            .collect())
    }

    fn timeout_of(&self, state: u8) -> u32 {
        state_timeout(&self.writer.config, state)
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

    /// The live connections and persistence templates.
    pub(super) fn read_connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let by_id = self.writer.layout.dest_addrs();
        let mut entries: Vec<ConnectionEntry> = self
            .live_conns()?
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
        entries.extend(self.live_templates()?);
        Ok(entries)
    }
}

/// Every entry of one connection map, keys widened to [`abi::ConnKey`] (an entry that goes
/// away while the map is walked is skipped, as the kernel's LRU may evict any).
fn entries<K: aya::Pod + Into<abi::ConnKey>>(
    conns: &BpfHashMap<aya::maps::MapData, K, abi::Conn>,
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
