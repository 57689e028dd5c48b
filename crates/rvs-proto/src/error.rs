//! Errors the API returns, with enough structure for rvsadm to print ipvsadm's exact text.

use rvs_core::{DataPlaneError, TableError};
use serde::{Deserialize, Serialize};

/// What kind of refusal an [`ApiError`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrorKind {
    /// The table refused the command.
    Table {
        /// The table's reason.
        error: TableError,
    },
    /// The data plane cannot realise it.
    DataPlane {
        /// The plane's reason.
        error: DataPlaneError,
    },
    /// A sync daemon of that role already runs.
    DaemonRunning,
    /// No sync daemon of that role runs.
    DaemonNotRunning,
    /// The request itself was malformed (bad JSON, unknown path, missing field).
    BadRequest,
    /// The change could not be made durable; nothing was applied.
    Storage,
    /// The configuration file could not be read or applied on reload.
    Config,
    /// The TCP API's bearer token was missing or wrong.
    Unauthorized,
    /// No endpoint has that path.
    NotFound,
    /// The endpoint does not take that method.
    MethodNotAllowed,
    /// rvsd cannot take the request now (too many connections); it may be retried.
    Unavailable,
    /// A sync daemon's interface does not exist (the kernel's ENODEV).
    NoDevice,
}

/// An error answer: a kind and a human-readable message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The kind, with details.
    #[serde(flatten)]
    pub kind: ErrorKind,
    /// A sentence naming the object and value at fault.
    pub message: String,
}

impl ApiError {
    /// An error of a kind with a message.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<TableError> for ApiError {
    fn from(error: TableError) -> Self {
        let message = error.to_string();
        Self::new(ErrorKind::Table { error }, message)
    }
}

impl From<DataPlaneError> for ApiError {
    fn from(error: DataPlaneError) -> Self {
        let message = error.to_string();
        Self::new(ErrorKind::DataPlane { error }, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::ServiceKey;

    #[test]
    fn table_errors_round_trip_through_json() {
        let e: ApiError = TableError::ServiceNotFound {
            service: ServiceKey::tcp("198.18.0.1:80".parse().unwrap()),
        }
        .into();
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"kind\":\"table\""), "{json}");
        assert_eq!(serde_json::from_str::<ApiError>(&json).unwrap(), e);
    }
}
