//! The desired configuration of services and dests: what ipvsadm's options set.
//!
//! These are plain values. Their rules are checked in [`crate::validate`]; the runtime state built
//! from them lives in [`crate::service`] and [`crate::dest`].

use crate::key::ServiceKey;
use crate::protocol::Family;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// The 14 IPVS scheduling algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Round robin (ip_vs_rr.c).
    Rr,
    /// Weighted round robin (ip_vs_wrr.c).
    Wrr,
    /// Least connection (ip_vs_lc.c).
    Lc,
    /// Weighted least connection, the default (ip_vs_wlc.c).
    #[default]
    Wlc,
    /// Shortest expected delay (ip_vs_sed.c).
    Sed,
    /// Never queue (ip_vs_nq.c).
    Nq,
    /// Locality-based least connection (ip_vs_lblc.c).
    Lblc,
    /// Locality-based least connection with replication (ip_vs_lblcr.c).
    Lblcr,
    /// Destination hashing (ip_vs_dh.c).
    Dh,
    /// Source hashing (ip_vs_sh.c).
    Sh,
    /// Weighted failover (ip_vs_fo.c).
    Fo,
    /// Weighted overflow (ip_vs_ovf.c).
    Ovf,
    /// Maglev hashing (ip_vs_mh.c).
    Mh,
    /// Power of two choices (ip_vs_twos.c).
    Twos,
    /// No scheduler (`-s none`, kernels since 4.x): the service exists, holds dests and
    /// connections synced from a master, and schedules nothing new.
    None,
}

impl SchedulerKind {
    /// Every scheduler, in the order ipvsadm's help lists them (twos last).
    pub const ALL: [Self; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
        Self::Twos,
    ];

    /// The kernel module's name (`rr`, `wlc`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Mh => "mh",
            Self::Twos => "twos",
            Self::None => "none",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that names no scheduler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no scheduler is named {0:?}")]
pub struct UnknownScheduler(pub String);

impl FromStr for SchedulerKind {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .chain([Self::None])
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheduler(s.to_owned()))
    }
}

/// The scheduler flags (`-b`): three generic bits whose meaning depends on the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchedFlags(pub u32);

impl SchedFlags {
    /// `IP_VS_SVC_F_SCHED1`: `sh-fallback` / `mh-fallback` / `flag-1`.
    pub const SCHED1: u32 = 0x08;
    /// `IP_VS_SVC_F_SCHED2`: `sh-port` / `mh-port` / `flag-2`.
    pub const SCHED2: u32 = 0x10;
    /// `IP_VS_SVC_F_SCHED3`: `flag-3`.
    pub const SCHED3: u32 = 0x20;
    /// Every scheduler flag bit.
    pub const MASK: u32 = Self::SCHED1 | Self::SCHED2 | Self::SCHED3;

    /// Whether the fallback flag (`sh-fallback`, `mh-fallback`) is set.
    #[must_use]
    pub const fn fallback(self) -> bool {
        self.0 & Self::SCHED1 != 0
    }

    /// Whether the port flag (`sh-port`, `mh-port`) is set.
    #[must_use]
    pub const fn port(self) -> bool {
        self.0 & Self::SCHED2 != 0
    }

    /// Whether no flag is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 & Self::MASK == 0
    }
}

/// The persistence granularity (`-M`): which part of the client address a template keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistMask {
    /// An IPv4 netmask, kept verbatim as the kernel does (any 32-bit value).
    V4(Ipv4Addr),
    /// An IPv6 prefix length, 1..=128.
    V6(u8),
}

impl PersistMask {
    /// The default mask of a family: /32 or /128 (one template per client address).
    #[must_use]
    pub const fn host(family: Family) -> Self {
        match family {
            Family::Inet => Self::V4(Ipv4Addr::BROADCAST),
            Family::Inet6 => Self::V6(128),
        }
    }

    /// Whether this is the per-host default for its family.
    #[must_use]
    pub fn is_host(&self) -> bool {
        match self {
            Self::V4(m) => *m == Ipv4Addr::BROADCAST,
            Self::V6(p) => *p == 128,
        }
    }
}

/// Persistence (`-p [timeout] -M mask`): a client stays with one dest while its template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    /// Template timeout in seconds, 1..=2678400 (ipvsadm's default 360).
    pub timeout: u32,
    /// The client-address mask templates are keyed on.
    pub netmask: PersistMask,
}

/// The longest timeout ipvsadm accepts: 31 days (`MAX_TIMEOUT`).
pub const MAX_TIMEOUT: u32 = 86_400 * 31;
/// ipvsadm's persistence timeout when `-p` has no value (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// The persistence engines the kernel knows (`--pe`).
pub const PERSISTENCE_ENGINES: [&str; 1] = ["sip"];

/// A virtual service's configuration (`-A`/`-E`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// Which service this is.
    pub key: ServiceKey,
    /// The scheduling algorithm (`-s`).
    #[serde(default)]
    pub scheduler: SchedulerKind,
    /// The scheduler flags (`-b`).
    #[serde(default)]
    pub sched_flags: SchedFlags,
    /// Persistence (`-p`, `-M`), if enabled.
    #[serde(default)]
    pub persistence: Option<Persistence>,
    /// The persistence engine (`--pe`), if any.
    #[serde(default)]
    pub pe_name: Option<String>,
    /// One-packet scheduling (`-o`; UDP and fwmark services only).
    #[serde(default)]
    pub one_packet: bool,
    /// Send a PROXY protocol header to real servers (an rvs addition, TCP services only): a
    /// full-NAT relay hides the client's address, and this carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// The PROXY protocol version sent to real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// The text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header.
    V2,
}

impl ProxyProtocol {
    /// `v1` or `v2`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults: wlc, no flags, no persistence.
    #[must_use]
    pub fn new(key: ServiceKey) -> Self {
        Self {
            key,
            scheduler: SchedulerKind::default(),
            sched_flags: SchedFlags::default(),
            persistence: None,
            pe_name: None,
            one_packet: false,
            proxy_protocol: None,
        }
    }

    /// The same service with another scheduler.
    #[must_use]
    pub fn with_scheduler(mut self, scheduler: SchedulerKind) -> Self {
        self.scheduler = scheduler;
        self
    }
}

/// The encapsulation of a tunnel dest (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TunnelKind {
    /// IP-in-IP (or IPv6-in-IPv6), the default.
    Ipip,
    /// Generic UDP Encapsulation to a UDP port.
    Gue {
        /// The destination UDP port, 1..=65535.
        port: u16,
    },
    /// GRE.
    Gre,
}

/// The checksum option of a GUE or GRE tunnel (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCsum {
    /// No checksum (the kernel's default).
    #[default]
    NoCsum,
    /// Checksum the outer header.
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

/// A tunnel dest's encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    /// The encapsulation type.
    pub kind: TunnelKind,
    /// The checksum option.
    #[serde(default)]
    pub csum: TunnelCsum,
}

impl Tunnel {
    /// Plain IP-in-IP, what `-i` alone means.
    pub const IPIP: Self = Self {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
}

/// How packets reach a dest (`-m`, `-g`, `-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum ForwardMethod {
    /// NAT: the director rewrites addresses both ways (`-m`).
    Masq,
    /// Direct routing: only the MAC address changes (`-g`, ipvsadm's default).
    Route,
    /// IP tunnelling (`-i`).
    Tunnel(Tunnel),
}

impl ForwardMethod {
    /// The name ipvsadm prints in listings (`Masq`, `Route`, `Tunnel`).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Masq => "Masq",
            Self::Route => "Route",
            Self::Tunnel(_) => "Tunnel",
        }
    }
}

/// Weight limit that ipvsadm 1.31 enforces (`-w 0..65535`).
pub const MAX_WEIGHT: u32 = 65_535;
/// Upper bound of the thresholds (`-x`, `-y`: 0..INT_MAX).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// A real server's configuration (`-a`/`-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestConfig {
    /// The real server's address and port.
    pub addr: SocketAddr,
    /// How packets reach it.
    pub forward: ForwardMethod,
    /// Its weight, 0..=65535; 0 quiesces it.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    #[serde(default)]
    pub l_threshold: u32,
}

impl DestConfig {
    /// A dest with weight 1 and no thresholds.
    #[must_use]
    pub const fn new(addr: SocketAddr, forward: ForwardMethod) -> Self {
        Self {
            addr,
            forward,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    /// The same dest with another weight.
    #[must_use]
    pub const fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// The three protocol timeouts that `--set` changes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP ESTABLISHED idle timeout (kernel default 900).
    pub tcp: u32,
    /// TCP FIN_WAIT timeout (kernel default 120).
    pub tcp_fin: u32,
    /// UDP timeout (kernel default 300).
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}
