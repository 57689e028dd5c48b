//! What the plane reads back from the program's maps: live connections and templates (`-Lc`),
//! counters and rates (`--stats`, `--rate`), ActiveConn/InActConn.

use super::XdpPlane;
use crate::addr;
use crate::clock::monotonic_ns;
use crate::timeouts::state_timeout;
use aya::maps::{HashMap as BpfHashMap, PerCpuArray};
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
        let map = self
            .ebpf
            .map(abi::maps::VERDICTS)
            .ok_or_else(|| missing(abi::maps::VERDICTS))?;
        let per_cpu = PerCpuArray::<_, u64>::try_from(map)
            .map_err(|e| super::failed("open map rvs_verdicts", e))?;
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
        use aya::maps::Map;
        let data = match self.ebpf.map(name)? {
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

    /// The conn tables' entries (IPv4 and IPv6) that have not expired, with their seconds left.
    fn live_conns(&self) -> Result<Vec<(abi::ConnKey, abi::Conn, u64)>, DataPlaneError> {
        let mut all = self.entries::<abi::ConnKey4>(abi::maps::CONNS4)?;
        all.extend(self.entries::<abi::ConnKey>(abi::maps::CONNS)?);
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

    /// Every entry of one connection map, keys widened to [`abi::ConnKey`] (an entry that
    /// goes away while the map is walked is skipped, as the kernel's LRU may evict any).
    fn entries<K: aya::Pod + Into<abi::ConnKey>>(
        &self,
        name: &str,
    ) -> Result<Vec<(abi::ConnKey, abi::Conn)>, DataPlaneError> {
        let map = self.ebpf.map(name).ok_or_else(|| missing(name))?;
        let conns = BpfHashMap::<_, K, abi::Conn>::try_from(map)
            .map_err(|e| super::failed(format!("open map {name}"), e))?;
        Ok(conns
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k.into(), v))
            .collect())
    }

    /// The live persistence templates with their dest and seconds left, read from
    /// `rvs_templates`, as IPVS lists them: client network with port 0, state NONE.
    fn live_templates(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let map = self
            .ebpf
            .map(abi::maps::TEMPLATES)
            .ok_or_else(|| missing(abi::maps::TEMPLATES))?;
        let templates = BpfHashMap::<_, abi::ConnKey, abi::Tmpl>::try_from(map)
            .map_err(|e| super::failed("open map rvs_templates", e))?;
        let by_id: HashMap<u32, SocketAddr> =
            self.dest_ids.iter().map(|((_, a), id)| (*id, *a)).collect();
        let now = monotonic_ns();
        Ok(templates
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
            .collect())
    }

    fn timeout_of(&self, state: u8) -> u32 {
        state_timeout(&self.config, state)
    }

    /// Every dest's traffic counters, summed over CPUs, by dest id.
    fn dest_counters(&self) -> Result<HashMap<u32, Counters>, DataPlaneError> {
        let map = self
            .ebpf
            .map(abi::maps::STATS)
            .ok_or_else(|| missing(abi::maps::STATS))?;
        let per_cpu = PerCpuArray::<_, abi::Stat>::try_from(map)
            .map_err(|e| super::failed("open map rvs_stats", e))?;
        let mut out = HashMap::new();
        for id in self.dest_ids.values() {
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
        let count_map = self
            .ebpf
            .map(abi::maps::COUNTS)
            .ok_or_else(|| missing(abi::maps::COUNTS))?;
        let count_map = aya::maps::Array::<_, abi::Count>::try_from(count_map)
            .map_err(|e| super::failed("open map rvs_counts", e))?;
        let mut counts: HashMap<u32, ConnCounts> = HashMap::new();
        for id in self.dest_ids.values() {
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
            .table
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
            .collect())
    }

    /// The live connections and persistence templates.
    pub(super) fn read_connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let by_id: HashMap<u32, SocketAddr> =
            self.dest_ids.iter().map(|((_, a), id)| (*id, *a)).collect();
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

fn missing(name: &str) -> DataPlaneError {
    super::failed(format!("find map {name}"), "the program has no such map")
}

/// The protocol of a map key (the program keys TCP, UDP and SCTP).
fn protocol_of(proto: u8) -> Protocol {
    match proto {
        6 => Protocol::Tcp,
        132 => Protocol::Sctp,
        _ => Protocol::Udp,
    }
}
