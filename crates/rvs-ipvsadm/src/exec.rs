//! Running a parsed command against a [`Backend`], and what ipvsadm prints for each outcome.

use crate::backend::{exit_outcome, Backend, BackendError, Outcome};
use crate::format;
use crate::messages::api_message;
use crate::opts::{optc, Cmd};
use crate::parse::{self, fmt, Invocation};
use crate::resolve::Resolver;
use crate::restore;
use crate::translate::{service_key, to_command};
use rvs_proto::{SyncDaemon, SyncState};
use std::io::BufRead;

/// Runs ipvsadm: `argv[0]` is the program name as invoked.
pub fn run(
    argv: &[String],
    stdin: &mut dyn BufRead,
    backend: &mut dyn Backend,
    resolver: &dyn Resolver,
) -> Outcome {
    let program = argv.first().map_or("ipvsadm", String::as_str);
    let args = &argv[1.min(argv.len())..];
    if args.is_empty() {
        return match backend.table() {
            Ok(t) => Outcome::out(format::list_all(&t, 0, resolver)),
            Err(e) => unavailable_or_api(&e, Cmd::List),
        };
    }
    let inv = match parse::parse(args, resolver) {
        Ok(inv) => inv,
        Err(exit) => return exit_outcome(exit, program),
    };
    execute(&inv, program, stdin, backend, resolver)
}

fn unavailable_or_api(e: &BackendError, cmd: Cmd) -> Outcome {
    match e {
        BackendError::Unavailable(why) => Outcome::err(&format!("Can't initialize ipvs: {why}"), 2),
        BackendError::Api(api) => Outcome::err(&api_message(cmd, api), 255),
    }
}

/// The message for an unknown scheduler, in the kernel's order of checks: the service's
/// existence first.
fn unknown_scheduler(inv: &Invocation, backend: &mut dyn Backend) -> Outcome {
    let key = service_key(inv);
    let exists = match backend.table() {
        Ok(t) => t.services.iter().any(|s| s.config.key == key),
        Err(e) => return unavailable_or_api(&e, inv.cmd),
    };
    let msg = match (inv.cmd, exists) {
        (Cmd::Add, true) => "Service already exists",
        (Cmd::Edit, false) => "No such service",
        _ => "Scheduler or persistence engine not found",
    };
    Outcome::err(msg, 255)
}

fn daemon_of(inv: &Invocation, state: SyncState) -> SyncDaemon {
    let d = &inv.daemon;
    SyncDaemon {
        state,
        mcast_ifn: d.mcast_ifn.clone(),
        syncid: d.syncid,
        sync_maxlen: (d.sync_maxlen != 0).then_some(d.sync_maxlen),
        mcast_group: d.mcast_group,
        mcast_port: (d.mcast_port != 0).then_some(d.mcast_port),
        mcast_ttl: (d.mcast_ttl != 0).then_some(d.mcast_ttl),
    }
}

fn list(inv: &Invocation, backend: &mut dyn Backend, r: &dyn Resolver) -> Outcome {
    let o = inv.options;
    if o.has(optc::CONNECTION) {
        return match backend.connections() {
            Ok(c) => Outcome::out(format::list_conn(&c, inv.format, r)),
            Err(e) => unavailable_or_api(&e, Cmd::List),
        };
    }
    let table = match backend.table() {
        Ok(t) => t,
        Err(e) => return unavailable_or_api(&e, Cmd::List),
    };
    if o.has(optc::SERVICE) {
        let key = service_key(inv);
        return match table.services.iter().find(|s| s.config.key == key) {
            Some(s) => Outcome::out(format::list_service(s, inv.format, r)),
            None => Outcome::err("No such service", 1),
        };
    }
    if o.has(optc::TIMEOUT) {
        return Outcome::out(format::list_timeout(&table.timeouts));
    }
    if o.has(optc::DAEMON) {
        return Outcome::out(format::list_daemon(&table.daemons));
    }
    Outcome::out(format::list_all(&table, inv.format, r))
}

/// Runs one checked invocation (`program` is argv\[0\], for texts that name it).
pub fn execute(
    inv: &Invocation,
    program: &str,
    stdin: &mut dyn BufRead,
    backend: &mut dyn Backend,
    r: &dyn Resolver,
) -> Outcome {
    match inv.cmd {
        Cmd::List => list(inv, backend, r),
        Cmd::Save => match backend.table() {
            Ok(t) => Outcome::out(format::list_all(&t, inv.format | fmt::RULE, r)),
            Err(e) => unavailable_or_api(&e, Cmd::Save),
        },
        Cmd::Restore => restore::restore(program, stdin, backend, r),
        Cmd::StartDaemon | Cmd::StopDaemon => {
            let state = inv.daemon.state.unwrap_or(SyncState::Master);
            let result = if inv.cmd == Cmd::StartDaemon {
                backend.start_daemon(daemon_of(inv, state))
            } else {
                backend.stop_daemon(state)
            };
            result.map_or_else(|e| unavailable_or_api(&e, inv.cmd), |()| Outcome::default())
        }
        _ => match to_command(inv) {
            Ok(Some(command)) => backend
                .apply(command)
                .map_or_else(|e| unavailable_or_api(&e, inv.cmd), |()| Outcome::default()),
            Ok(None) => Outcome::default(),
            Err(_unknown) => unknown_scheduler(inv, backend),
        },
    }
}
