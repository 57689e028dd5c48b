//! Health as the table holds it: a runtime overlay beside the operator's intent.
//!
//! Each dest carries a [`Health`] verdict (what checks found; never stored as intent) and each
//! service a [`HealthPolicy`] (intent, durable: what to do with a dest that fails, the
//! fallback server, the quorum). From the two, [`Service::effective_entry`] derives what the
//! data planes serve: the *effective* weights and membership, as the kernel shows them under
//! keepalived or ldirectord. The operator's configured weight is never changed by health.
//!
//! [`Service::effective_entry`]: crate::Service::effective_entry

use crate::check::CheckSpec;
use crate::config::{DestConfig, ForwardMethod};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What checks found of a dest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No check watches it: served as configured.
    #[default]
    Unchecked,
    /// Its checks pass.
    Up,
    /// Its checks fail, or have not passed yet.
    Down,
}

impl Health {
    /// Whether the dest may serve (unchecked or up).
    #[must_use]
    pub const fn serves(self) -> bool {
        !matches!(self, Self::Down)
    }
}

/// What a failed dest becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Weight 0: no new connections, open ones continue (ldirectord `quiescent=yes`,
    /// keepalived `inhibit_on_failure`).
    #[default]
    Quiesce,
    /// Out of the data plane: its connections end, as with the kernel's `expire_nodest_conn`.
    Remove,
}

/// A service's health policy: intent, durable, set by configuration or the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthPolicy {
    /// What a failed dest becomes.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The sorry server: takes new connections (alone) only while no real server is up or
    /// the quorum is lost. Reached by masquerading, weight 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<SocketAddr>,
    /// The least total configured weight of the dests that are up for the service to count
    /// as up (keepalived's `quorum`); 0 = no quorum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quorum: u32,
    /// The band around the quorum (keepalived's `hysteresis`): the service goes down below
    /// `quorum - hysteresis` and up again at `quorum + hysteresis`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hysteresis: u32,
    /// The check of every dest of the service (`[service.check]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,
    /// Checks of particular dests, in place of the service's (`[service.real.check]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dest_checks: BTreeMap<SocketAddr, CheckSpec>,
    /// Whether a checked dest starts up rather than down when it is added or restored.
    /// Down by default, so a restart or reload never revives a dead server for even one
    /// connection (keepalived's `alpha`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub start_up: bool,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
const fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
const fn is_false(b: &bool) -> bool {
    !*b
}

impl HealthPolicy {
    /// Whether it is the policy of a service nobody checks (nothing to store).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The check that watches the dest at `addr`, if any.
    #[must_use]
    pub fn check_for(&self, addr: &SocketAddr) -> Option<&CheckSpec> {
        self.dest_checks.get(addr).or(self.check.as_ref())
    }

    /// The health a dest at `addr` has when it is added or restored.
    #[must_use]
    pub fn initial_health(&self, addr: &SocketAddr) -> Health {
        match (self.check_for(addr), self.start_up) {
            (None, _) => Health::Unchecked,
            (Some(_), false) => Health::Down,
            (Some(_), true) => Health::Up,
        }
    }

    /// The fallback server as a dest.
    #[must_use]
    pub fn fallback_dest(&self) -> Option<DestConfig> {
        self.fallback
            .map(|addr| DestConfig::new(addr, ForwardMethod::Masq))
    }

    /// Whether the quorum holds, given the total weight up and whether it held before.
    #[must_use]
    pub const fn quorum_holds(&self, weight_up: u64, held: bool) -> bool {
        if self.quorum == 0 {
            return true;
        }
        let quorum = self.quorum as u64;
        let band = self.hysteresis as u64;
        if held {
            weight_up + band >= quorum
        } else {
            weight_up >= quorum + band
        }
    }
}

/// What health makes of one dest in the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestRuntime {
    /// What checks found.
    pub health: Health,
    /// The weight the planes schedule by.
    pub effective_weight: u32,
    /// Whether the planes have it at all (a removed failure, or an idle fallback, is out).
    pub in_plane: bool,
    /// Whether this is the service's fallback server rather than one of its dests.
    pub fallback: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_has_a_band_around_it() {
        let p = HealthPolicy {
            quorum: 4,
            hysteresis: 1,
            ..HealthPolicy::default()
        };
        // Holding: lost only below quorum - hysteresis.
        assert!(p.quorum_holds(3, true));
        assert!(!p.quorum_holds(2, true));
        // Lost: back only at quorum + hysteresis.
        assert!(!p.quorum_holds(4, false));
        assert!(p.quorum_holds(5, false));
        assert!(HealthPolicy::default().quorum_holds(0, false));
    }
}
