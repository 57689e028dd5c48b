//! The interface every data plane implements: it receives the table's changes, and reports
//! counters and connections back. No I/O here; the planes live in their own crates.

use crate::command::Change;
use crate::conn::ConnectionEntry;
use crate::dest::ConnCounts;
use crate::key::ServiceKey;
use crate::stats::{Counters, Rates};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Why a data plane refused or failed to apply changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DataPlaneError {
    /// The plane cannot realise this configuration; another can.
    #[error("the {plane} data plane cannot {what}; use {hint}")]
    Unsupported {
        /// The plane's name (`proxy`, `xdp`, `none`).
        plane: String,
        /// What it cannot do, e.g. "forward to route (-g) dests".
        what: String,
        /// What would, e.g. "--dataplane xdp".
        hint: String,
    },
    /// An operating-system call failed.
    #[error("{plane} data plane: {operation} failed: {message}")]
    Failed {
        /// The plane's name.
        plane: String,
        /// What it was doing, e.g. "bind 127.0.0.1:8080".
        operation: String,
        /// The system's message.
        message: String,
    },
}

/// Counters of one dest as a data plane sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestStats {
    /// The dest.
    pub addr: SocketAddr,
    /// Active, inactive and persistent connection counts.
    pub conns: ConnCounts,
    /// Cumulative traffic.
    pub counters: Counters,
    /// Current rates.
    pub rates: Rates,
}

/// Counters of one service and its dests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// The service.
    pub service: ServiceKey,
    /// Cumulative traffic.
    pub counters: Counters,
    /// Current rates.
    pub rates: Rates,
    /// Its dests.
    pub dests: Vec<DestStats>,
}

/// One of a plane's own counters (what it did with connections or packets, beyond the
/// table's counters): a name in snake case and the count since the plane started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneCounter {
    /// What is counted, e.g. `connect_retries`, `dropped_no_dest`.
    pub name: String,
    /// How many.
    pub value: u64,
}

/// A data plane: realises the table's services and reports what flows through them.
pub trait DataPlane: Send {
    /// The plane's name, as `--dataplane` spells it.
    fn name(&self) -> &'static str;

    /// Checks that the plane can realise these changes, without applying them. rvsd calls it
    /// before it commits a command, so a refused change is never half-applied.
    ///
    /// # Errors
    /// [`DataPlaneError::Unsupported`] naming what cannot be done.
    fn check(&self, changes: &[Change]) -> Result<(), DataPlaneError>;

    /// Applies changes already accepted by the table, in order.
    ///
    /// # Errors
    /// [`DataPlaneError::Failed`] when the system refuses (a port that cannot be bound, ...).
    fn apply(&mut self, changes: &[Change]) -> Result<(), DataPlaneError>;

    /// Counters and rates of every service.
    ///
    /// # Errors
    /// [`DataPlaneError::Failed`] when the plane cannot read them (a map that will not open):
    /// the caller shows the error rather than a table without traffic.
    fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError>;

    /// Live connections and persistence templates.
    ///
    /// # Errors
    /// [`DataPlaneError::Failed`] when the plane cannot read them.
    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError>;

    /// The plane's own counters (none by default).
    ///
    /// # Errors
    /// [`DataPlaneError::Failed`] when the plane cannot read them.
    fn counters(&self) -> Result<Vec<PlaneCounter>, DataPlaneError> {
        Ok(Vec::new())
    }

    /// A reader of the live connections on handles of its own, for listings that must not
    /// hold the director (and every writer behind it) while the plane walks its tables.
    /// None: listings go through [`DataPlane::connections`].
    fn connection_reader(&self) -> Option<std::sync::Arc<dyn ConnectionReader>> {
        None
    }
}

/// Reads a plane's live connections and persistence templates apart from the plane: from
/// its own map handles or shared registry, and a view of the table the plane refreshes on
/// every change it applies.
pub trait ConnectionReader: Send + Sync {
    /// Live connections and persistence templates, as [`DataPlane::connections`] lists them.
    ///
    /// # Errors
    /// [`DataPlaneError::Failed`] when the plane's tables cannot be read.
    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError>;
}
