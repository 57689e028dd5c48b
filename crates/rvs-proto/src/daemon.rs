//! The connection-sync daemon settings (`--start-daemon`, `-L --daemon`).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The role of a sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    /// Sends connection state.
    Master,
    /// Receives it.
    Backup,
}

impl SyncState {
    /// `master` or `backup`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Backup => "backup",
        }
    }
}

/// One sync daemon, as `--start-daemon` configures it. Unset options are `None` (the kernel
/// then uses its defaults: group 224.0.0.81, port 8848, TTL 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: SyncState,
    /// The multicast interface (ipvsadm's default `eth0`).
    pub mcast_ifn: String,
    /// The sync ID, 0..=255.
    pub syncid: u8,
    /// Maximum sync message length, if set.
    #[serde(default)]
    pub sync_maxlen: Option<u16>,
    /// Multicast group, if set.
    #[serde(default)]
    pub mcast_group: Option<IpAddr>,
    /// UDP port, if set.
    #[serde(default)]
    pub mcast_port: Option<u16>,
    /// Multicast TTL, if set.
    #[serde(default)]
    pub mcast_ttl: Option<u8>,
}
