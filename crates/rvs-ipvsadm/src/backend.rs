//! Where the table lives, and what a run of ipvsadm gives back: the seam between ipvsadm's
//! behaviour (this crate) and its transport (rvsadm's client of rvsd, or a table in tests).

use crate::parse::Exit;
use crate::usage;
/// The table's types a backend passes, so a backend needs no other crate for them.
pub use rvs_core::{Command, ConnectionEntry};
use rvs_proto::{ApiError, SyncDaemon, SyncState, TableView};

/// Why the backend could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The API refused the request.
    Api(ApiError),
    /// rvsd could not be reached; the text says where it was looked for.
    Unavailable(String),
}

/// Where the table lives: rvsd's control API for rvsadm, an in-memory table in tests.
pub trait Backend {
    /// The whole table with counters.
    ///
    /// # Errors
    /// When rvsd is unreachable or refuses.
    fn table(&mut self) -> Result<TableView, BackendError>;
    /// Applies a command (a batch for `-R`).
    ///
    /// # Errors
    /// The refusal.
    fn apply(&mut self, command: Command) -> Result<(), BackendError>;
    /// Starts a sync daemon.
    ///
    /// # Errors
    /// [`ErrorKind::DaemonRunning`] if one of that role runs.
    fn start_daemon(&mut self, daemon: SyncDaemon) -> Result<(), BackendError>;
    /// Stops a sync daemon.
    ///
    /// # Errors
    /// [`ErrorKind::DaemonNotRunning`] if none of that role runs.
    fn stop_daemon(&mut self, state: SyncState) -> Result<(), BackendError>;
    /// Live connections.
    ///
    /// # Errors
    /// When rvsd is unreachable.
    fn connections(&mut self) -> Result<Vec<ConnectionEntry>, BackendError>;
}

/// What ipvsadm printed and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code (255 is ipvsadm's `-1`).
    pub code: u8,
}

impl Outcome {
    pub(crate) fn out(s: String) -> Self {
        Self {
            stdout: s,
            ..Self::default()
        }
    }

    pub(crate) fn err(msg: &str, code: u8) -> Self {
        Self {
            stderr: format!("{msg}\n"),
            code,
            ..Self::default()
        }
    }
}

/// The text and exit code for an [`Exit`] (`program` is argv\[0\]).
#[must_use]
pub fn exit_outcome(exit: Exit, program: &str) -> Outcome {
    match exit {
        Exit::Help => Outcome::out(usage::usage(program)),
        Exit::Version => Outcome::out(usage::version()),
        Exit::TryHelp => Outcome::err(
            &format!("Try `{program} -h' or '{program} --help' for more information."),
            255,
        ),
        Exit::Fail(msg, code) => Outcome::err(&msg, code),
    }
}
