//! Why a command was refused. Each error names the object and the value at fault.
//!
//! The variants follow the kernel's and ipvsadm's refusals one for one, so that `rvs-ipvsadm` can
//! print ipvsadm's exact text for each (see [`TableError::errno_class`]).

use crate::config::SchedulerKind;
use crate::key::ServiceKey;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A refused command. The table is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TableError {
    /// `-A` of a service that exists.
    #[error("service {service} already exists")]
    ServiceExists {
        /// The service.
        service: ServiceKey,
    },
    /// An operation on a service that does not exist.
    #[error("service {service} does not exist")]
    ServiceNotFound {
        /// The service.
        service: ServiceKey,
    },
    /// `-a` of a dest that exists.
    #[error("dest {dest} of service {service} already exists")]
    DestExists {
        /// The service.
        service: ServiceKey,
        /// The dest.
        dest: SocketAddr,
    },
    /// `-e`/`-d` of a dest that does not exist.
    #[error("dest {dest} of service {service} does not exist")]
    DestNotFound {
        /// The service.
        service: ServiceKey,
        /// The dest.
        dest: SocketAddr,
    },
    /// A persistence engine that does not exist (only `sip` does).
    #[error("service {service}: no persistence engine is named {name:?}")]
    PersistenceEngineNotFound {
        /// The service.
        service: ServiceKey,
        /// The unknown engine name.
        name: String,
    },
    /// A persistence timeout outside 1..=2678400 seconds.
    #[error("service {service}: persistence timeout {timeout} is outside 1..=2678400 seconds")]
    PersistenceTimeoutOutOfRange {
        /// The service.
        service: ServiceKey,
        /// The refused timeout.
        timeout: u32,
    },
    /// A persistence mask of the wrong family, or an IPv6 prefix outside 1..=128.
    #[error("service {service}: persistence netmask {netmask} does not fit the service's family")]
    PersistenceMaskInvalid {
        /// The service.
        service: ServiceKey,
        /// The refused mask, as text.
        netmask: String,
    },
    /// One-packet scheduling on a service that is neither UDP nor fwmark.
    #[error("service {service}: one-packet scheduling is only for UDP and fwmark services")]
    OnePacketNotUdp {
        /// The service.
        service: ServiceKey,
    },
    /// A PROXY protocol header asked for on a service that is not TCP.
    #[error("service {service}: the PROXY protocol header is only for TCP services")]
    ProxyProtocolNotTcp {
        /// The service.
        service: ServiceKey,
    },
    /// Port 0 on a service that is not persistent.
    #[error("service {service}: port 0 is only allowed for persistent services")]
    ZeroPortNotPersistent {
        /// The service.
        service: ServiceKey,
    },
    /// Firewall mark 0.
    #[error("firewall mark 0 is not a valid service")]
    ZeroFwMark,
    /// Scheduler flags the scheduler does not have.
    #[error(
        "service {service}: scheduler flags {flags:#x} are not valid for scheduler {scheduler}"
    )]
    SchedFlagsInvalid {
        /// The service.
        service: ServiceKey,
        /// The refused flags.
        flags: u32,
        /// The scheduler.
        scheduler: SchedulerKind,
    },
    /// A weight outside 0..=65535.
    #[error("dest {dest}: weight {weight} is outside 0..=65535")]
    WeightOutOfRange {
        /// The dest.
        dest: SocketAddr,
        /// The refused weight.
        weight: u32,
    },
    /// A threshold outside 0..=2147483647.
    #[error("dest {dest}: threshold {threshold} is outside 0..=2147483647")]
    ThresholdOutOfRange {
        /// The dest.
        dest: SocketAddr,
        /// The refused threshold.
        threshold: u32,
    },
    /// A lower threshold above the upper one (the kernel's ERANGE).
    #[error("dest {dest}: lower threshold {lower} is above upper threshold {upper}")]
    ThresholdOrder {
        /// The dest.
        dest: SocketAddr,
        /// The upper threshold.
        upper: u32,
        /// The lower threshold.
        lower: u32,
    },
    /// A dest whose family differs from the service's without tunnelling.
    #[error("dest {dest}: a different address family than service {service} is allowed only for tunnelling dests")]
    MixedFamily {
        /// The service.
        service: ServiceKey,
        /// The dest.
        dest: SocketAddr,
    },
    /// A dest address the kernel does not take as a real server (0.0.0.0/8, multicast, the
    /// limited broadcast; IPv6 unspecified, multicast, link-local).
    #[error("dest {dest}: address is not unicast (0.0.0.0/8, multicast, broadcast, unspecified and link-local addresses cannot be real servers)")]
    DestNotUnicast {
        /// The dest.
        dest: SocketAddr,
    },
    /// A tunnel option that the tunnel type does not take.
    #[error("dest {dest}: {problem}")]
    TunnelInvalid {
        /// The dest.
        dest: SocketAddr,
        /// What is wrong, e.g. "a GUE tunnel needs a port (1..=65535)".
        problem: String,
    },
    /// More dests than the scheduler can hold (mh: its table size).
    #[error("service {service}: scheduler {scheduler} holds at most {limit} dests")]
    TooManyDests {
        /// The service.
        service: ServiceKey,
        /// The scheduler.
        scheduler: SchedulerKind,
        /// Its limit.
        limit: usize,
    },
    /// A `--set` timeout outside 0..=2678400 seconds.
    #[error("timeout {name} {value} is outside 0..=2678400 seconds")]
    TimeoutOutOfRange {
        /// Which timeout (`tcp`, `tcpfin`, `udp`).
        name: String,
        /// The refused value.
        value: u32,
    },
    /// A health policy the service cannot have.
    #[error("health policy: {problem}")]
    HealthPolicyInvalid {
        /// The service.
        service: ServiceKey,
        /// What is wrong, naming the setting (e.g. "fallback 2001:db8::1:80 is not IPv4").
        problem: String,
    },
    /// A command of a batch failed; nothing of the batch was applied.
    #[error("command {index} of the batch: {source}")]
    InBatch {
        /// The 0-based position of the failing command.
        index: usize,
        /// Why it failed.
        #[source]
        source: Box<TableError>,
    },
}

/// The kernel error class of a refusal: what `errno` IPVS would have returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrnoClass {
    /// EEXIST.
    Exists,
    /// ESRCH (no such service).
    NoService,
    /// ENOENT (no such dest, or no such scheduler / engine).
    NotFound,
    /// ERANGE.
    Range,
    /// EINVAL.
    Invalid,
}

impl TableError {
    /// The errno the kernel returns for the same refusal; ipvsadm picks its message from it.
    #[must_use]
    pub fn errno_class(&self) -> ErrnoClass {
        match self {
            Self::ServiceExists { .. } | Self::DestExists { .. } => ErrnoClass::Exists,
            Self::ServiceNotFound { .. } => ErrnoClass::NoService,
            Self::DestNotFound { .. } | Self::PersistenceEngineNotFound { .. } => {
                ErrnoClass::NotFound
            }
            Self::ThresholdOrder { .. } => ErrnoClass::Range,
            Self::InBatch { source, .. } => source.errno_class(),
            _ => ErrnoClass::Invalid,
        }
    }

    /// The innermost error (unwrapping [`TableError::InBatch`]).
    #[must_use]
    pub fn root(&self) -> &Self {
        match self {
            Self::InBatch { source, .. } => source.root(),
            other => other,
        }
    }
}
