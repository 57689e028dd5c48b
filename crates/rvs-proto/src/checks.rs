//! The health checks as `GET /v1/checks` lists them: one entry per checked dest.

use rvs_core::{CheckKind, Health, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One checked dest and its probe's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    /// The service.
    pub service: ServiceKey,
    /// The dest.
    pub dest: SocketAddr,
    /// Where the check goes (the dest, or its check port).
    pub target: SocketAddr,
    /// The kind of check.
    pub kind: CheckKind,
    /// The probe's verdict.
    pub health: Health,
    /// When the verdict last changed (or the probe started), seconds since the Unix epoch.
    pub since: f64,
    /// Checks made.
    pub checks: u64,
    /// The last check's reason code (HAProxy's: `L4OK`, `L4CON`, `L7STS`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the last check saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the last check started, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<f64>,
    /// How long the last check took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// How late the last check started against its schedule, in milliseconds.
    #[serde(default)]
    pub drift_ms: f64,
}
