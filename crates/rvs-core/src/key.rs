//! How a virtual service is named: protocol + address + port, or a firewall mark.

use crate::protocol::{Family, Protocol};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// The identity of a virtual service, as IPVS looks it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    /// A TCP, UDP or SCTP service on one address and port (`-t`, `-u`, `--sctp-service`).
    Inet {
        /// The transport protocol.
        protocol: Protocol,
        /// The virtual address and port. Port 0 means "every port" (persistent services only).
        addr: SocketAddr,
    },
    /// A firewall-mark service (`-f`), matching packets by `skb->mark`.
    FwMark {
        /// The mark, 1..=u32::MAX.
        mark: u32,
        /// The address family of the packets it matches (`-6` selects IPv6).
        family: Family,
    },
}

impl ServiceKey {
    /// A TCP service key.
    #[must_use]
    pub const fn tcp(addr: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::Tcp,
            addr,
        }
    }

    /// A UDP service key.
    #[must_use]
    pub const fn udp(addr: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::Udp,
            addr,
        }
    }

    /// The address family of the service.
    #[must_use]
    pub const fn family(&self) -> Family {
        match self {
            Self::Inet { addr, .. } => match addr {
                SocketAddr::V4(_) => Family::Inet,
                SocketAddr::V6(_) => Family::Inet6,
            },
            Self::FwMark { family, .. } => *family,
        }
    }

    /// The virtual port, or 0 for firewall-mark services.
    #[must_use]
    pub const fn port(&self) -> u16 {
        match self {
            Self::Inet { addr, .. } => addr.port(),
            Self::FwMark { .. } => 0,
        }
    }

    /// The protocol of an address service, `None` for a firewall-mark service.
    #[must_use]
    pub const fn protocol(&self) -> Option<Protocol> {
        match self {
            Self::Inet { protocol, .. } => Some(*protocol),
            Self::FwMark { .. } => None,
        }
    }

    /// Whether this is a firewall-mark service.
    #[must_use]
    pub const fn is_fwmark(&self) -> bool {
        matches!(self, Self::FwMark { .. })
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet { protocol, addr } => write!(f, "{protocol} {addr}"),
            Self::FwMark {
                mark,
                family: Family::Inet,
            } => write!(f, "FWM {mark}"),
            Self::FwMark {
                mark,
                family: Family::Inet6,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}
