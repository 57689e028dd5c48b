//! ipvsadm's backend over rvsd's API: the client's calls and errors as rvs-ipvsadm wants them.

use rvs_client::{Client, ClientError};
use rvs_ipvsadm::backend::{Command, ConnectionEntry};
use rvs_ipvsadm::{Backend, BackendError};
use rvs_proto::{SyncDaemon, SyncState, TableView};

/// rvsd, as ipvsadm's "kernel".
pub struct Rvsd(pub Client);

fn backend_error(e: ClientError) -> BackendError {
    match e {
        ClientError::Api(api) => BackendError::Api(api),
        ClientError::Unavailable(why) => BackendError::Unavailable(why),
    }
}

impl Backend for Rvsd {
    fn table(&mut self) -> Result<TableView, BackendError> {
        self.0.table().map_err(backend_error)
    }

    fn apply(&mut self, command: Command) -> Result<(), BackendError> {
        self.0
            .apply_command(&command)
            .map(drop)
            .map_err(backend_error)
    }

    fn start_daemon(&mut self, daemon: SyncDaemon) -> Result<(), BackendError> {
        self.0.start_daemon(&daemon).map_err(backend_error)
    }

    fn stop_daemon(&mut self, state: SyncState) -> Result<(), BackendError> {
        self.0.stop_daemon(state).map_err(backend_error)
    }

    fn connections(&mut self) -> Result<Vec<ConnectionEntry>, BackendError> {
        self.0.connections().map_err(backend_error)
    }
}
