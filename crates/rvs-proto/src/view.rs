//! The table as listings show it: configuration, connection counts, counters and rates.

use crate::daemon::SyncDaemon;
use rvs_core::{
    ConnCounts, Counters, DestConfig, DestRuntime, HealthPolicy, Rates, ServiceConfig, Timeouts,
};
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
    /// What health makes of it (absent where nothing checks the service): its health, the
    /// effective weight the planes use (`-L` shows it; `config.weight` is the operator's,
    /// which `-S` shows), whether the planes have it, and whether it is the fallback server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<DestRuntime>,
}

impl DestView {
    /// Whether `-L` lists it: always, but for a dest out of the planes.
    #[must_use]
    pub fn listed(&self) -> bool {
        self.runtime.is_none_or(|r| r.in_plane)
    }

    /// The weight `-L` shows: the effective one.
    #[must_use]
    pub fn effective_weight(&self) -> u32 {
        self.runtime
            .map_or(self.config.weight, |r| r.effective_weight)
    }

    /// Whether it is the service's fallback server rather than one of its dests (`-S`
    /// leaves it out: it is part of the health policy).
    #[must_use]
    pub fn is_fallback(&self) -> bool {
        self.runtime.is_some_and(|r| r.fallback)
    }
}

/// What health makes of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRuntime {
    /// Its health policy.
    pub policy: HealthPolicy,
    /// Whether its quorum holds.
    pub quorum_up: bool,
    /// Whether its fallback server takes the new connections.
    pub fallback_active: bool,
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
    /// Its dests in kernel list order (newest first); the fallback server, if it has one,
    /// last.
    #[serde(default)]
    pub dests: Vec<DestView>,
    /// Its health policy and state (absent where nothing checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<ServiceRuntime>,
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
        let services = table.services().map(service_view).collect();
        Self {
            services,
            timeouts: table.timeouts(),
            daemons,
            conn_table_size,
        }
    }
}

/// One service's view; with its health overlay where a policy is set or a dest is checked.
fn service_view(s: &rvs_core::Service) -> ServiceView {
    let checked = !s.policy().is_default()
        || s.dests()
            .iter()
            .any(|d| d.health != rvs_core::Health::Unchecked);
    let mut dests: Vec<DestView> = s
        .dests()
        .iter()
        .map(|d| DestView {
            config: d.config,
            conns: d.conns,
            counters: d.stats.counters(),
            rates: d.stats.rates(),
            runtime: None,
        })
        .collect();
    let mut runtime = None;
    if checked {
        for (config, r) in s.dest_runtimes() {
            match dests
                .iter_mut()
                .find(|d| d.config.addr == config.addr && !r.fallback)
            {
                Some(d) => d.runtime = Some(r),
                None => dests.push(DestView {
                    config,
                    conns: ConnCounts::default(),
                    counters: Counters::default(),
                    rates: Rates::default(),
                    runtime: Some(r),
                }),
            }
        }
        runtime = Some(ServiceRuntime {
            policy: s.policy().clone(),
            quorum_up: s.quorum_up(),
            fallback_active: s.fallback_active(),
        });
    }
    ServiceView {
        config: s.config().clone(),
        counters: s.stats().counters(),
        rates: s.stats().rates(),
        dests,
        runtime,
    }
}
