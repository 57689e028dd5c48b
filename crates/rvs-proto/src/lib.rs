//! The messages of rvs's control API, version 1 (`/v1/...`): what rvsd serves and rvsadm, the
//! web console and remote tools send. Plain serde types, no I/O.
//!
//! | method and path | request body | response body |
//! |---|---|---|
//! | `GET /v1/table` | — | [`TableView`] |
//! | `POST /v1/commands` | [`rvs_core::Command`] | [`Applied`] or [`ApiError`] |
//! | `GET /v1/connections` | — | `Vec<`[`rvs_core::ConnectionEntry`]`>` |
//! | `POST /v1/daemons` | [`SyncDaemon`] | [`Applied`] or [`ApiError`] |
//! | `DELETE /v1/daemons/{master,backup}` | — | [`Applied`] or [`ApiError`] |
//! | `POST /v1/reload` | — | [`Applied`] or [`ApiError`] |
//! | `GET /v1/health` | — | [`Health`] |

#![deny(missing_docs)]

mod checks;
mod daemon;
mod error;
mod view;

pub use checks::CheckView;
pub use daemon::{SyncDaemon, SyncState};
pub use error::{ApiError, ErrorKind};
pub use view::{DestView, ServiceRuntime, ServiceView, TableView};

use rvs_core::Change;
use serde::{Deserialize, Serialize};

/// The API version this crate speaks; paths start with `/v1`.
pub const API_VERSION: &str = "v1";

/// The answer to an accepted change: what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The changes made, in order (empty when nothing needed to change).
    pub changes: Vec<Change>,
}

/// What `GET /v1/health` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// rvsd's version.
    pub version: String,
    /// The data plane in use (`none`, `proxy`, `xdp`).
    pub dataplane: String,
    /// Number of virtual services.
    pub services: usize,
    /// Services in the table that the data plane could not realise yet (a VIP port taken by
    /// another program, ...); rvsd retries them.
    #[serde(default)]
    pub unrealised: Vec<Unrealised>,
    /// The data plane's own counters (connect retries, packets per verdict, ...).
    #[serde(default)]
    pub plane_counters: Vec<rvs_core::PlaneCounter>,
}

/// A service the data plane does not serve yet, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrealised {
    /// The service.
    pub service: rvs_core::ServiceKey,
    /// The plane's last refusal.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use rvs_core::{Command, ServiceConfig, ServiceKey};

    #[test]
    fn every_command_shape_round_trips_through_json() {
        let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
        let cmd = Command::batch(vec![
            Command::AddService(ServiceConfig::new(key)),
            Command::Zero { service: None },
            Command::SetTimeouts(rvs_core::Timeouts::default()),
            Command::batch(vec![Command::Clear]),
        ]);
        let json = serde_json::to_string(&cmd).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
    }
}
