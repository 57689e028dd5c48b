//! Golden tests: every case in testdata/ipvsadm/cases runs through `rvs_ipvsadm::run` and must
//! print, byte for byte, what ipvsadm 1.31 prints (stdout, stderr, exit code).
//!
//! The expected transcripts are made by the oracle, ipvsadm 1.31's own ipvsadm.c built over a
//! file-backed libipvs (testdata/ipvsadm/oracle): `BLESS=1 cargo test -p rvs-ipvsadm --test
//! golden` reruns every case through the oracle and rewrites the `.out` files for review.
//!
//! Case files: `state NAME` (a table in the oracle's state format, testdata/ipvsadm/states),
//! `conn NAME` (a /proc/net/ip_vs_conn fixture), `$ ARGS` (one ipvsadm invocation), `< FILE`
//! (stdin for the previous invocation, from the states folder). `#` lines are comments.
//! Arguments are split on spaces; `''` stands for an empty argument.

use rvs_core::{
    Command, ConnCounts, ConnState, ConnVirtual, ConnectionEntry, Counters, DestConfig, Family,
    ForwardMethod, PersistMask, Persistence, Protocol, Rates, SchedFlags, ServiceConfig,
    ServiceKey, Table, TableError, Tunnel, TunnelCsum, TunnelKind,
};
use rvs_ipvsadm::resolve::System;
use rvs_ipvsadm::{run, Backend, BackendError};
use rvs_proto::{ApiError, ErrorKind, SyncDaemon, SyncState, TableView};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ipvsadm")
}

/// Counters, rates and connection counts read from a state fixture.
type Overlay = HashMap<(ServiceKey, Option<SocketAddr>), (Counters, Rates, ConnCounts)>;

/// The in-memory backend: a real rvs-core table plus the fixture's counters.
struct Memory {
    table: Table,
    daemons: Vec<SyncDaemon>,
    overlay: Overlay,
    conns: Vec<ConnectionEntry>,
}

impl Backend for Memory {
    fn table(&mut self) -> Result<TableView, BackendError> {
        let mut view = TableView::from_table(&self.table, self.daemons.clone(), 4096);
        for s in &mut view.services {
            if let Some((c, r, _)) = self.overlay.get(&(s.config.key, None)) {
                s.counters = *c;
                s.rates = *r;
            }
            for d in &mut s.dests {
                if let Some((c, r, k)) = self.overlay.get(&(s.config.key, Some(d.config.addr))) {
                    d.counters = *c;
                    d.rates = *r;
                    d.conns = *k;
                }
            }
        }
        Ok(view)
    }
    fn apply(&mut self, command: Command) -> Result<(), BackendError> {
        let zeroed = match &command {
            Command::Zero { service } => Some(*service),
            _ => None,
        };
        self.table
            .apply(command)
            .map_err(|e: TableError| BackendError::Api(e.into()))?;
        // The fixture's counters stand in for traffic; zeroing clears them as it would.
        if let Some(only) = zeroed {
            for ((key, _), (c, r, _)) in &mut self.overlay {
                if only.is_none_or(|k| k == *key) {
                    *c = Counters::default();
                    *r = Rates::default();
                }
            }
        }
        Ok(())
    }
    fn start_daemon(&mut self, daemon: SyncDaemon) -> Result<(), BackendError> {
        if self.daemons.iter().any(|d| d.state == daemon.state) {
            return Err(BackendError::Api(ApiError::new(
                ErrorKind::DaemonRunning,
                "running",
            )));
        }
        self.daemons.push(daemon);
        Ok(())
    }
    fn stop_daemon(&mut self, state: SyncState) -> Result<(), BackendError> {
        let before = self.daemons.len();
        self.daemons.retain(|d| d.state != state);
        if before == self.daemons.len() {
            return Err(BackendError::Api(ApiError::new(
                ErrorKind::DaemonNotRunning,
                "none",
            )));
        }
        Ok(())
    }
    fn connections(&mut self) -> Result<Vec<ConnectionEntry>, BackendError> {
        Ok(self.conns.clone())
    }
}

fn num<T: std::str::FromStr>(w: &mut std::str::SplitWhitespace<'_>) -> T {
    w.next()
        .and_then(|s| s.parse().ok())
        .expect("state fixture field")
}

fn stats(w: &mut std::str::SplitWhitespace<'_>) -> (Counters, Rates) {
    let v: Vec<u64> = (0..10).map(|_| num(w)).collect();
    (
        Counters {
            conns: v[0],
            in_pkts: v[1],
            out_pkts: v[2],
            in_bytes: v[3],
            out_bytes: v[4],
        },
        Rates {
            cps: v[5],
            in_pps: v[6],
            out_pps: v[7],
            in_bps: v[8],
            out_bps: v[9],
        },
    )
}

/// Builds the backend from the oracle's state format.
fn load_state(text: &str) -> Memory {
    let mut table = Table::new();
    let mut overlay = Overlay::new();
    let mut daemons = Vec::new();
    let mut current: Option<(ServiceKey, Vec<DestConfig>)> = None;
    let flush = |table: &mut Table, current: &mut Option<(ServiceKey, Vec<DestConfig>)>| {
        if let Some((key, dests)) = current.take() {
            for d in dests.into_iter().rev() {
                table
                    .apply(Command::AddDest {
                        service: key,
                        dest: d,
                    })
                    .expect("fixture dest");
            }
        }
    };
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("timeout") => {
                let t = rvs_core::Timeouts {
                    tcp: num(&mut w),
                    tcp_fin: num(&mut w),
                    udp: num(&mut w),
                };
                table.apply(Command::SetTimeouts(t)).unwrap();
            }
            Some("svc") => {
                flush(&mut table, &mut current);
                let af: u16 = num(&mut w);
                let proto: u8 = num(&mut w);
                let addr: IpAddr = num(&mut w);
                let port: u16 = num(&mut w);
                let fwmark: u32 = num(&mut w);
                let sched: String = num(&mut w);
                let flags: u32 = num(&mut w);
                let timeout: u32 = num(&mut w);
                let netmask: u32 = num(&mut w);
                let pe: String = num(&mut w);
                let family = if af == 10 {
                    Family::Inet6
                } else {
                    Family::Inet
                };
                let key = if fwmark != 0 {
                    ServiceKey::FwMark {
                        mark: fwmark,
                        family,
                    }
                } else {
                    let protocol = match proto {
                        17 => Protocol::Udp,
                        132 => Protocol::Sctp,
                        _ => Protocol::Tcp,
                    };
                    ServiceKey::Inet {
                        protocol,
                        addr: SocketAddr::new(addr, port),
                    }
                };
                let netmask = if af == 10 {
                    PersistMask::V6(u8::try_from(netmask).unwrap())
                } else {
                    PersistMask::V4(Ipv4Addr::from(netmask.to_ne_bytes()))
                };
                let config = ServiceConfig {
                    key,
                    scheduler: sched.parse().unwrap(),
                    sched_flags: SchedFlags(flags & 0x38),
                    persistence: (flags & 1 != 0).then_some(Persistence { timeout, netmask }),
                    pe_name: (pe != "-").then_some(pe),
                    one_packet: flags & 4 != 0,
                    proxy_protocol: None,
                };
                table
                    .apply(Command::AddService(config))
                    .expect("fixture service");
                let (c, r) = stats(&mut w);
                overlay.insert((key, None), (c, r, ConnCounts::default()));
                current = Some((key, Vec::new()));
            }
            Some("dest") => {
                let _af: u16 = num(&mut w);
                let addr: IpAddr = num(&mut w);
                let port: u16 = num(&mut w);
                let conn_flags: u32 = num(&mut w);
                let weight: u32 = num(&mut w);
                let (u, l): (u32, u32) = (num(&mut w), num(&mut w));
                let conns = ConnCounts {
                    active: num(&mut w),
                    inactive: num(&mut w),
                    persistent: num(&mut w),
                };
                let (tt, tp, tf): (u8, u16, u8) = (num(&mut w), num(&mut w), num(&mut w));
                let forward = match conn_flags {
                    0 => ForwardMethod::Masq,
                    2 => ForwardMethod::Tunnel(Tunnel {
                        kind: match tt {
                            1 => TunnelKind::Gue { port: tp },
                            2 => TunnelKind::Gre,
                            _ => TunnelKind::Ipip,
                        },
                        csum: match tf {
                            1 => TunnelCsum::Csum,
                            2 => TunnelCsum::RemCsum,
                            _ => TunnelCsum::NoCsum,
                        },
                    }),
                    _ => ForwardMethod::Route,
                };
                let dest = DestConfig {
                    addr: SocketAddr::new(addr, port),
                    forward,
                    weight,
                    u_threshold: u,
                    l_threshold: l,
                };
                let (c, r) = stats(&mut w);
                let (key, dests) = current.as_mut().expect("dest after svc");
                overlay.insert((*key, Some(dest.addr)), (c, r, conns));
                dests.push(dest);
            }
            Some("daemon") => {
                let state = if num::<u8>(&mut w) == 1 {
                    SyncState::Master
                } else {
                    SyncState::Backup
                };
                let mcast_ifn: String = num(&mut w);
                let syncid: u8 = num(&mut w);
                let maxlen: u16 = num(&mut w);
                let port: u16 = num(&mut w);
                let ttl: u8 = num(&mut w);
                let af: u16 = num(&mut w);
                let group: String = num(&mut w);
                daemons.push(SyncDaemon {
                    state,
                    mcast_ifn,
                    syncid,
                    sync_maxlen: (maxlen != 0).then_some(maxlen),
                    mcast_group: (af != 0).then(|| group.parse().unwrap()),
                    mcast_port: (port != 0).then_some(port),
                    mcast_ttl: (ttl != 0).then_some(ttl),
                });
            }
            _ => {}
        }
    }
    flush(&mut table, &mut current);
    Memory {
        table,
        daemons,
        overlay,
        conns: Vec::new(),
    }
}

/// Reads a /proc/net/ip_vs_conn fixture (IPv4 rows in hex, as the kernel prints them).
fn load_conns(text: &str) -> Vec<ConnectionEntry> {
    let hex_addr =
        |s: &str| -> IpAddr { Ipv4Addr::from(u32::from_str_radix(s, 16).unwrap()).into() };
    let hex_port = |s: &str| u16::from_str_radix(s, 16).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let client = SocketAddr::new(hex_addr(f[1]), hex_port(f[2]));
            let vaddr = SocketAddr::new(hex_addr(f[3]), hex_port(f[4]));
            let dest = SocketAddr::new(hex_addr(f[5]), hex_port(f[6]));
            let virtual_ = match f[0] {
                "TCP" => ConnVirtual::Addr {
                    protocol: Protocol::Tcp,
                    addr: vaddr,
                },
                "UDP" => ConnVirtual::Addr {
                    protocol: Protocol::Udp,
                    addr: vaddr,
                },
                "SCTP" => ConnVirtual::Addr {
                    protocol: Protocol::Sctp,
                    addr: vaddr,
                },
                _ => ConnVirtual::FwMark {
                    mark: u32::from_str_radix(f[3], 16).unwrap(),
                },
            };
            let state = match f[7] {
                "ESTABLISHED" => ConnState::Established,
                "FIN_WAIT" => ConnState::FinWait,
                "SYN_RECV" => ConnState::SynRecv,
                "TIME_WAIT" => ConnState::TimeWait,
                "UDP" => ConnState::Udp,
                _ => ConnState::None,
            };
            ConnectionEntry {
                client,
                virtual_,
                dest,
                state,
                expires_secs: f[8].parse().unwrap(),
                pe_name: f.get(9).map(|s| (*s).to_owned()),
                pe_data: f.get(10).map(|s| (*s).to_owned()),
            }
        })
        .collect()
}

struct Case {
    state: Option<String>,
    conn: Option<String>,
    steps: Vec<(Vec<String>, Option<String>)>,
}

fn read_case(text: &str) -> Case {
    let mut case = Case {
        state: None,
        conn: None,
        steps: Vec::new(),
    };
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("state ") {
            case.state = Some(n.trim().to_owned());
        } else if let Some(n) = line.strip_prefix("conn ") {
            case.conn = Some(n.trim().to_owned());
        } else if let Some(args) = line.strip_prefix("$ ") {
            // Words split on spaces; `''` is an empty argument.
            case.steps.push((
                args.split(' ')
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        if w == "''" {
                            String::new()
                        } else {
                            w.to_owned()
                        }
                    })
                    .collect(),
                None,
            ));
        } else if let Some(f) = line.strip_prefix("< ") {
            case.steps.last_mut().expect("< after $").1 = Some(f.trim().to_owned());
        }
    }
    case
}

fn transcript_entry(args: &[String], stdout: &[u8], stderr: &[u8], code: i32) -> Vec<u8> {
    let shown: Vec<&str> = args
        .iter()
        .map(|a| if a.is_empty() { "''" } else { a.as_str() })
        .collect();
    let mut t = format!("$ {}\n", shown.join(" ")).into_bytes();
    t.extend_from_slice(stdout);
    t.extend_from_slice(b"--- stderr\n");
    t.extend_from_slice(stderr);
    t.extend_from_slice(format!("--- exit {code}\n").as_bytes());
    t
}

fn ours(case: &Case) -> Vec<u8> {
    let dir = testdata().join("states");
    let mut backend = case.state.as_ref().map_or_else(
        || load_state(""),
        |s| load_state(&std::fs::read_to_string(dir.join(format!("{s}.state"))).unwrap()),
    );
    if let Some(c) = &case.conn {
        backend.conns = load_conns(&std::fs::read_to_string(dir.join(c)).unwrap());
    }
    let resolver = System::new();
    let mut out = Vec::new();
    for (args, stdin) in &case.steps {
        let input = stdin
            .as_ref()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .unwrap_or_default();
        let mut argv = vec!["ipvsadm".to_owned()];
        argv.extend(args.iter().cloned());
        let o = run(&argv, &mut input.as_slice(), &mut backend, &resolver);
        out.extend(transcript_entry(
            args,
            o.stdout.as_bytes(),
            o.stderr.as_bytes(),
            i32::from(o.code),
        ));
    }
    out
}

fn oracle(case: &Case, oracle: &Path) -> Vec<u8> {
    let dir = testdata().join("states");
    let state = std::env::temp_dir().join(format!("rvs-golden-{}.state", std::process::id()));
    match &case.state {
        Some(s) => std::fs::copy(dir.join(format!("{s}.state")), &state)
            .map(drop)
            .unwrap(),
        None => std::fs::write(&state, "").unwrap(),
    }
    let mut out = Vec::new();
    for (args, stdin) in &case.steps {
        let mut cmd = Process::new("bash");
        cmd.arg("-c")
            .arg("exec -a ipvsadm \"$0\" \"$@\"")
            .arg(oracle)
            .args(args);
        cmd.env("IPVS_FAKE_STATE", &state);
        if let Some(c) = &case.conn {
            cmd.env("IPVS_FAKE_CONN", dir.join(c));
        }
        let input = stdin
            .as_ref()
            .map(|f| std::fs::File::open(dir.join(f)).unwrap());
        cmd.stdin(input.map_or_else(std::process::Stdio::null, std::process::Stdio::from));
        let o = cmd.output().unwrap();
        out.extend(transcript_entry(
            args,
            &o.stdout,
            &o.stderr,
            o.status.code().unwrap_or(-1),
        ));
    }
    let _ = std::fs::remove_file(&state);
    out
}

#[test]
fn every_case_prints_what_ipvsadm_prints() {
    let cases = testdata().join("cases");
    let bless = std::env::var_os("BLESS").is_some();
    let oracle_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ipvsadm-ref/ipvsadm");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "expected the golden cases in {}",
        cases.display()
    );
    let mut failures = Vec::new();
    for path in names {
        let case = read_case(&std::fs::read_to_string(&path).unwrap());
        let golden = path.with_extension("out");
        if bless {
            assert!(
                oracle_bin.exists(),
                "BLESS needs the oracle: run testdata/ipvsadm/oracle/build.sh"
            );
            std::fs::write(&golden, oracle(&case, &oracle_bin)).unwrap();
        }
        let want = std::fs::read(&golden).unwrap_or_default();
        let got = ours(&case);
        if got != want {
            failures.push(format!(
                "{}:\n--- want\n{}\n--- got\n{}",
                path.display(),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
