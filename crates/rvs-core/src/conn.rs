//! Connection entries as the data planes report them (`ipvsadm -Lc`).

use crate::protocol::Protocol;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// The state of a connection, with the kernel's names (ip_vs_proto_tcp.c, ip_vs_proto_udp.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnState {
    /// No state yet; also the state of persistence templates.
    None,
    /// TCP ESTABLISHED (counts as active).
    Established,
    /// TCP SYN_SENT.
    SynSent,
    /// TCP SYN_RECV.
    SynRecv,
    /// TCP FIN_WAIT.
    FinWait,
    /// TCP TIME_WAIT.
    TimeWait,
    /// TCP CLOSE.
    Close,
    /// TCP CLOSE_WAIT.
    CloseWait,
    /// TCP LAST_ACK.
    LastAck,
    /// TCP LISTEN.
    Listen,
    /// TCP SYNACK.
    SynAck,
    /// A UDP flow.
    Udp,
}

impl ConnState {
    /// The name `ipvsadm -Lc` prints.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
            Self::Udp => "UDP",
        }
    }

    /// Whether a connection in this state counts as active (`ActiveConn`).
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Established)
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a connection entry's "virtual" side is: an address service, or a fwmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnVirtual {
    /// The virtual address and port the client reached.
    Addr {
        /// The protocol.
        protocol: Protocol,
        /// The address.
        addr: SocketAddr,
    },
    /// A fwmark persistence template (shown as protocol `IP`).
    FwMark {
        /// The mark.
        mark: u32,
    },
}

/// One connection or persistence template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEntry {
    /// The client's address (port 0 for templates).
    pub client: SocketAddr,
    /// The virtual side.
    pub virtual_: ConnVirtual,
    /// The dest.
    pub dest: SocketAddr,
    /// Its state.
    pub state: ConnState,
    /// Seconds until it expires if nothing more happens.
    pub expires_secs: u64,
    /// The persistence engine's name, if any.
    pub pe_name: Option<String>,
    /// The persistence engine's data, if any.
    pub pe_data: Option<String>,
}
