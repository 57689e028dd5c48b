//! The userspace data plane: a full-NAT TCP/UDP relay that realises rvs's table without root.
//!
//! The director ends each client connection and opens its own to the real server the core's
//! scheduler picks ("masq" semantics); persistence, quiescing, thresholds and counters all come
//! from the same `rvs_core::Table` the kernel semantics live in, mirrored here from the
//! `Change`s rvsd sends. What packets-level forwarding would need (direct routing, tunnels,
//! firewall marks, SCTP, port-0 services) is refused by [`ProxyPlane::check`] with a message
//! naming `--dataplane xdp`.
//!
//! Each service gets one listening socket per worker (SO_REUSEPORT), bound with IP_FREEBIND so a
//! VIP may be configured before it is up. Sockets for a batch are all bound before anything
//! changes, so a batch either takes effect whole or not at all.

#![deny(missing_docs)]

mod listen;
mod listing;
pub mod pool;
pub mod proxy_header;
pub mod registry;
pub mod shared;
pub mod splice;
mod tcp;
mod udp;

use rvs_core::{
    Change, ConnectionEntry, ConnectionReader, DataPlane, DataPlaneError, DestStats, ForwardMethod,
    Protocol, ServiceConfig, ServiceKey, ServiceStats,
};
use shared::Shared;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The plane's name.
const NAME: &str = "proxy";

/// The tasks of one service; they stop when it is dropped.
struct Running {
    tasks: Vec<JoinHandle<()>>,
    one_packet: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Sockets bound for a new service, before anything is spawned.
enum Bound {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
}

/// The proxy plane.
pub struct ProxyPlane {
    shared: Arc<Shared>,
    runtime: Handle,
    workers: usize,
    services: HashMap<ServiceKey, Running>,
    ticker: JoinHandle<()>,
}

impl ProxyPlane {
    /// A plane whose tasks run on `runtime`, with `workers` listening sockets per service.
    #[must_use]
    pub fn new(runtime: Handle, workers: usize) -> Self {
        let shared = Arc::new(Shared::new());
        let ticking = Arc::clone(&shared);
        let ticker = runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            for n in 0u64.. {
                every.tick().await;
                ticking.tick_coarse();
                if n % 5 == 0 {
                    let now = ticking.now();
                    ticking.table().tick(now);
                }
            }
        });
        Self {
            shared,
            runtime,
            workers: workers.max(1),
            services: HashMap::new(),
            ticker,
        }
    }

    /// The shared state (for metrics and tests).
    #[must_use]
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    fn unsupported(what: String) -> DataPlaneError {
        DataPlaneError::Unsupported {
            plane: NAME.to_owned(),
            what,
            hint: "--dataplane xdp".to_owned(),
        }
    }

    fn check_service(c: &ServiceConfig) -> Result<(), DataPlaneError> {
        match c.key {
            ServiceKey::FwMark { mark, .. } => Err(Self::unsupported(format!(
                "serve firewall-mark service FWM {mark}"
            ))),
            ServiceKey::Inet {
                protocol: Protocol::Sctp,
                addr,
            } => Err(Self::unsupported(format!("relay SCTP service {addr}"))),
            ServiceKey::Inet { addr, .. } if addr.port() == 0 => Err(Self::unsupported(format!(
                "listen on every port of {} (a port-0 service)",
                addr.ip()
            ))),
            ServiceKey::Inet { .. } => Ok(()),
        }
    }

    fn bind(&self, c: &ServiceConfig) -> Result<Bound, DataPlaneError> {
        let ServiceKey::Inet { protocol, addr } = c.key else {
            return Err(Self::unsupported(format!("serve {}", c.key)));
        };
        let failed = |e: std::io::Error| DataPlaneError::Failed {
            plane: NAME.to_owned(),
            operation: format!("bind {protocol} {addr}"),
            message: e.to_string(),
        };
        Ok(match protocol {
            Protocol::Tcp => Bound::Tcp(
                (0..self.workers)
                    .map(|_| listen::tcp(addr))
                    .collect::<Result<_, _>>()
                    .map_err(failed)?,
            ),
            Protocol::Udp => Bound::Udp(
                (0..self.workers)
                    .map(|_| listen::udp(addr))
                    .collect::<Result<_, _>>()
                    .map_err(failed)?,
            ),
            Protocol::Sctp => return Err(Self::unsupported(format!("relay SCTP service {addr}"))),
        })
    }

    fn spawn(&self, c: &ServiceConfig, bound: Bound) -> Result<Running, DataPlaneError> {
        let _guard = self.runtime.enter();
        let key = c.key;
        let ServiceKey::Inet { addr: vip, .. } = key else {
            return Err(Self::unsupported(format!("serve {key}")));
        };
        let failed = |e: std::io::Error| DataPlaneError::Failed {
            plane: NAME.to_owned(),
            operation: format!("listen on {vip}"),
            message: e.to_string(),
        };
        let one_packet = Arc::new(AtomicBool::new(c.one_packet));
        let mut tasks = Vec::new();
        match bound {
            Bound::Tcp(listeners) => {
                for l in listeners {
                    let l = tokio::net::TcpListener::from_std(l).map_err(failed)?;
                    tasks.push(self.runtime.spawn(tcp::accept_loop(
                        Arc::clone(&self.shared),
                        key,
                        vip,
                        l,
                    )));
                }
            }
            Bound::Udp(sockets) => {
                let flows = Arc::new(udp::Flows::default());
                for s in sockets {
                    let s = Arc::new(tokio::net::UdpSocket::from_std(s).map_err(failed)?);
                    let op = Arc::clone(&one_packet);
                    tasks.push(self.runtime.spawn(udp::serve(
                        Arc::clone(&self.shared),
                        key,
                        vip,
                        s,
                        Arc::clone(&flows),
                        op,
                    )));
                }
            }
        }
        Ok(Running { tasks, one_packet })
    }
}

impl Drop for ProxyPlane {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

impl DataPlane for ProxyPlane {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, changes: &[Change]) -> Result<(), DataPlaneError> {
        for c in changes {
            match c {
                Change::ServiceAdded(s) | Change::ServiceEdited(s) => Self::check_service(s)?,
                Change::DestAdded { dest, .. } | Change::DestEdited { dest, .. } => {
                    let how = match dest.forward {
                        ForwardMethod::Masq => continue,
                        ForwardMethod::Route => "direct routing (-g)",
                        ForwardMethod::Tunnel(_) => "tunnelling (-i)",
                    };
                    return Err(Self::unsupported(format!(
                        "forward to real server {} by {how}; it relays with masquerading (-m) only",
                        dest.addr
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), DataPlaneError> {
        self.check(changes)?;
        // Bind every new service's sockets first: a failure leaves everything as it was. A
        // service removed and added again in one batch (`-C` then `-A` in a restore) keeps
        // the sockets it has, so its VIP never stops listening.
        let mut bound: HashMap<usize, Bound> = HashMap::new();
        let mut to_bind = std::collections::HashSet::new();
        for (i, c) in changes.iter().enumerate() {
            if let Change::ServiceAdded(s) = c {
                if !self.services.contains_key(&s.key) && to_bind.insert(s.key) {
                    bound.insert(i, self.bind(s)?);
                }
            }
        }
        let mut removed: HashMap<ServiceKey, Running> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            if let Err(e) = self.shared.table().apply_change(c) {
                tracing::error!(error = %e, change = ?c, "proxy plane mirror drifted");
            }
            match c {
                Change::ServiceAdded(s) => {
                    if let Some(b) = bound.remove(&i) {
                        let running = self.spawn(s, b)?;
                        self.services.insert(s.key, running);
                    } else if let Some(running) = removed.remove(&s.key) {
                        running.one_packet.store(s.one_packet, Ordering::Relaxed);
                        self.services.insert(s.key, running);
                    }
                }
                Change::ServiceEdited(s) => {
                    if let Some(r) = self.services.get(&s.key) {
                        r.one_packet.store(s.one_packet, Ordering::Relaxed);
                    }
                }
                Change::ServiceRemoved { service } => {
                    if let Some(running) = self.services.remove(service) {
                        removed.insert(*service, running);
                    }
                }
                Change::TimeoutsSet(t) => self.shared.set_timeouts(*t),
                _ => {}
            }
        }
        Ok(())
    }

    fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
        let table = self.shared.table();
        Ok(table
            .services()
            .map(|s| ServiceStats {
                service: s.key(),
                counters: s.stats().counters(),
                rates: s.stats().rates(),
                dests: s
                    .dests()
                    .iter()
                    .map(|d| DestStats {
                        addr: d.addr(),
                        conns: d.conns,
                        counters: d.stats.counters(),
                        rates: d.stats.rates(),
                    })
                    .collect(),
            })
            .collect())
    }

    fn counters(&self) -> Result<Vec<rvs_core::PlaneCounter>, DataPlaneError> {
        let c = |name: &str, v: &std::sync::atomic::AtomicU64| rvs_core::PlaneCounter {
            name: name.to_owned(),
            value: v.load(Ordering::Relaxed),
        };
        Ok(vec![
            c("connect_retries", &self.shared.connect_retries),
            c("refused_no_dest", &self.shared.no_dest),
        ])
    }

    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        self.shared.connections()
    }

    fn connection_reader(&self) -> Option<Arc<dyn ConnectionReader>> {
        Some(Arc::clone(&self.shared) as Arc<dyn ConnectionReader>)
    }
}
