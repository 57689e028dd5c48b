//! Running a parsed command against a [`Backend`], and what ipvsadm prints for each outcome.

use crate::format;
use crate::opts::{optc, Cmd};
use crate::parse::{
    self, fmt, Exit, Invocation, AF_INET6, FWD_MASQ, FWD_TUNNEL, F_ONEPACKET, F_PERSISTENT,
};
use crate::resolve::Resolver;
use crate::restore;
use crate::usage;
use rvs_core::{
    Command, ConnectionEntry, DestConfig, ErrnoClass, Family, ForwardMethod, PersistMask,
    Persistence, SchedFlags, SchedulerKind, ServiceConfig, ServiceKey, TableError, Timeouts,
    Tunnel, TunnelCsum, TunnelKind,
};
use rvs_proto::{ApiError, ErrorKind, SyncDaemon, SyncState, TableView};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};

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
    fn out(s: String) -> Self {
        Self {
            stdout: s,
            ..Self::default()
        }
    }

    fn err(msg: &str, code: u8) -> Self {
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

/// The service an invocation names.
#[must_use]
pub fn service_key(inv: &Invocation) -> ServiceKey {
    let s = &inv.svc;
    if s.fwmark != 0 {
        let family = if s.af == AF_INET6 {
            Family::Inet6
        } else {
            Family::Inet
        };
        return ServiceKey::FwMark {
            mark: s.fwmark,
            family,
        };
    }
    let protocol = s.protocol.unwrap_or(rvs_core::Protocol::Tcp);
    ServiceKey::Inet {
        protocol,
        addr: SocketAddr::new(s.addr, s.port),
    }
}

/// The service configuration of `-A`/`-E`; `Err` carries an unknown scheduler's name.
fn service_config(inv: &Invocation) -> Result<ServiceConfig, String> {
    let s = &inv.svc;
    let key = service_key(inv);
    let scheduler: SchedulerKind = s.sched_name.parse().map_err(|_| s.sched_name.clone())?;
    let persistence = (s.flags & F_PERSISTENT != 0).then(|| Persistence {
        timeout: s.timeout,
        netmask: if key.family() == Family::Inet6 {
            PersistMask::V6(u8::try_from(s.netmask).unwrap_or(128))
        } else {
            PersistMask::V4(Ipv4Addr::from(s.netmask.to_ne_bytes()))
        },
    });
    Ok(ServiceConfig {
        key,
        scheduler,
        sched_flags: SchedFlags(s.flags & SchedFlags::MASK),
        persistence,
        pe_name: (!s.pe_name.is_empty()).then(|| s.pe_name.clone()),
        one_packet: s.flags & F_ONEPACKET != 0,
        proxy_protocol: s.proxy_protocol,
    })
}

/// The dest configuration of `-a`/`-e`.
#[must_use]
pub fn dest_config(inv: &Invocation) -> DestConfig {
    let d = &inv.dest;
    let forward = match d.conn_flags {
        FWD_MASQ => ForwardMethod::Masq,
        FWD_TUNNEL => ForwardMethod::Tunnel(Tunnel {
            kind: match d.tun_type {
                1 => TunnelKind::Gue { port: d.tun_port },
                2 => TunnelKind::Gre,
                _ => TunnelKind::Ipip,
            },
            csum: match d.tun_flags {
                1 => TunnelCsum::Csum,
                2 => TunnelCsum::RemCsum,
                _ => TunnelCsum::NoCsum,
            },
        }),
        _ => ForwardMethod::Route,
    };
    DestConfig {
        addr: SocketAddr::new(d.addr, d.port),
        forward,
        weight: u32::try_from(d.weight).unwrap_or(0),
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    }
}

/// The core command an invocation of a table-changing command makes.
///
/// # Errors
/// The name of an unknown scheduler (`-A`/`-E`).
pub fn to_command(inv: &Invocation) -> Result<Option<Command>, String> {
    let service = service_key(inv);
    Ok(Some(match inv.cmd {
        Cmd::Add => Command::AddService(service_config(inv)?),
        Cmd::Edit => Command::EditService(service_config(inv)?),
        Cmd::Del => Command::DelService { service },
        Cmd::AddDest => Command::AddDest {
            service,
            dest: dest_config(inv),
        },
        Cmd::EditDest => Command::EditDest {
            service,
            dest: dest_config(inv),
        },
        Cmd::DelDest => Command::DelDest {
            service,
            dest: SocketAddr::new(inv.dest.addr, inv.dest.port),
        },
        Cmd::Flush => Command::Clear,
        // libipvs sends no service for the zero address and port (`-Z -t 0.0.0.0:0`), and
        // the kernel then zeroes every service.
        Cmd::Zero => Command::Zero {
            service: inv
                .options
                .has(optc::SERVICE)
                .then_some(service)
                .filter(|k| !zero_address(k)),
        },
        Cmd::Timeout => {
            let [tcp, tcp_fin, udp] = inv.timeouts;
            Command::SetTimeouts(Timeouts { tcp, tcp_fin, udp })
        }
        _ => return Ok(None),
    }))
}

/// Whether a service key is the zero address and port (`0.0.0.0:0`, `[::]:0`).
fn zero_address(key: &ServiceKey) -> bool {
    matches!(key, ServiceKey::Inet { addr, .. } if addr.ip().is_unspecified() && addr.port() == 0)
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
