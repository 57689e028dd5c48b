//! The table as listings show it: configuration, connection counts, counters and rates.

use crate::daemon::SyncDaemon;
use rvs_core::{ConnCounts, Counters, DestConfig, Rates, ServiceConfig, Timeouts};
use serde::{Deserialize, Serialize};

/// One dest in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestView {
    /// Its configuration.
    pub config: DestConfig,
    /// Active, inactive and persistent connections.
    #[serde(default)]
    pub conns: ConnCounts,
    /// Cumulative counters.
    #[serde(default)]
    pub counters: Counters,
    /// Current rates.
    #[serde(default)]
    pub rates: Rates,
}

/// One service in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Its configuration.
    pub config: ServiceConfig,
    /// Cumulative counters.
    #[serde(default)]
    pub counters: Counters,
    /// Current rates.
    #[serde(default)]
    pub rates: Rates,
    /// Its dests in kernel list order (newest first).
    #[serde(default)]
    pub dests: Vec<DestView>,
}

/// The whole table, as `GET /v1/table` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    /// Services in the order they were added.
    pub services: Vec<ServiceView>,
    /// The `--set` timeouts.
    pub timeouts: Timeouts,
    /// Running sync daemons.
    #[serde(default)]
    pub daemons: Vec<SyncDaemon>,
    /// The connection table size the banner shows (`size=4096`).
    pub conn_table_size: u32,
}

impl TableView {
    /// The view of a table: configuration, counts, counters and rates of every service and
    /// dest, services in the order they were added, dests in kernel list order.
    #[must_use]
    pub fn from_table(
        table: &rvs_core::Table,
        daemons: Vec<SyncDaemon>,
        conn_table_size: u32,
    ) -> Self {
        let services = table
            .services()
            .map(|s| ServiceView {
                config: s.config().clone(),
                counters: s.stats().counters(),
                rates: s.stats().rates(),
                dests: s
                    .dests()
                    .iter()
                    .map(|d| DestView {
                        config: d.config,
                        conns: d.conns,
                        counters: d.stats.counters(),
                        rates: d.stats.rates(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            services,
            timeouts: table.timeouts(),
            daemons,
            conn_table_size,
        }
    }
}
