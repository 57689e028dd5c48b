//! ipvsadm's texts for the refusals of rvsd's API (libipvs's `ipvs_strerror`, by errno and
//! operation).

use crate::opts::Cmd;
use rvs_core::{ErrnoClass, TableError};
use rvs_proto::{ApiError, ErrorKind};

/// ipvsadm's text for a refusal of `cmd` (libipvs's `ipvs_strerror` by errno and operation).
#[must_use]
pub fn api_message(cmd: Cmd, e: &ApiError) -> String {
    match &e.kind {
        ErrorKind::Table { error } => kernel_message(cmd, error),
        ErrorKind::DaemonRunning => "Daemon has already run".to_owned(),
        ErrorKind::DaemonNotRunning => "No daemon is running".to_owned(),
        ErrorKind::NoDevice => "No such device".to_owned(),
        _ => e.message.clone(),
    }
}

/// The message libipvs gives for the kernel errno matching a table refusal.
#[must_use]
pub fn kernel_message(cmd: Cmd, e: &TableError) -> String {
    let class = e.errno_class();
    let text = match (cmd, class) {
        (Cmd::Add, ErrnoClass::Exists) => "Service already exists",
        (Cmd::Add | Cmd::Edit, ErrnoClass::NotFound) => "Scheduler or persistence engine not found",
        (Cmd::Edit | Cmd::Del | Cmd::Zero | Cmd::List, ErrnoClass::NoService) => "No such service",
        (Cmd::AddDest | Cmd::EditDest | Cmd::DelDest, ErrnoClass::NoService) => {
            "Service not defined"
        }
        (Cmd::AddDest, ErrnoClass::Exists) => "Destination already exists",
        (Cmd::EditDest | Cmd::DelDest, ErrnoClass::NotFound) => "No such destination",
        (_, ErrnoClass::Range) => "Numerical result out of range",
        (_, ErrnoClass::Invalid) => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        }
        _ => return e.to_string(),
    };
    text.to_owned()
}
