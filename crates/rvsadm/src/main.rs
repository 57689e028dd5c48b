//! `rvsadm` (and `ipvsadm`, through a symlink): ipvsadm 1.31's command line over rvsd.
//!
//! rvs's own additions are long options ipvsadm does not have:
//! `--socket PATH` (where rvsd listens; also `RVS_SOCKET`; default /run/rvs/rvsd.sock) and
//! `--json` (with `-L`: the table as JSON, as the API returns it), and `--checks` (each
//! checked real server's health; with `--json`, as the API returns it).

mod backend;

use rvs_client::{Client, ClientError};
use rvs_ipvsadm::resolve::System;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

const ADDITIONS: &str = "rvs additions (options ipvsadm does not have):
  --socket PATH                       rvsd's control socket (or RVS_SOCKET; default /run/rvs/rvsd.sock)
  --json                              with -L: print the table as JSON
  --checks                            list each checked real server's health (with --json: as JSON)
  --proxy-protocol v1|v2              with -A/-E: send real servers a PROXY protocol header
  (--socket and --json are taken wherever they stand before --; RVS_TIMEOUT: seconds to wait)
";

/// rvs's own options, taken out of argv.
struct Additions {
    socket: Option<PathBuf>,
    json: bool,
    checks: bool,
}

/// Takes rvs's own options out of argv.
fn take_additions(argv: &mut Vec<String>) -> Result<Additions, String> {
    let mut socket = None;
    let mut json = false;
    let mut checks = false;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            break;
        }
        if a == "--json" {
            json = true;
            argv.remove(i);
        } else if a == "--checks" {
            checks = true;
            argv.remove(i);
        } else if let Some(v) = a.strip_prefix("--socket=") {
            socket = Some(PathBuf::from(v));
            argv.remove(i);
        } else if a == "--socket" {
            if i + 1 >= argv.len() {
                return Err("--socket: missing argument".to_owned());
            }
            socket = Some(PathBuf::from(argv.remove(i + 1)));
            argv.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(Additions {
        socket,
        json,
        checks,
    })
}

/// How long ago `t` (seconds since the epoch) was, shortly: `42s`, `7m`, `3h`, `2d`.
fn ago(t: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative number of seconds"
    )]
    let s = (now - t).max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The `--checks` listing.
fn print_checks(checks: &[rvs_proto::CheckView]) {
    println!(
        "{:<30} {:<22} {:<5} {:<5} {:<6} {:>6} {:>7}  Last check",
        "Service", "RemoteAddress:Port", "Check", "State", "Code", "Since", "Checks"
    );
    for c in checks {
        let state = serde_json::to_value(c.health)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let last = match (&c.detail, c.duration_ms) {
            (Some(d), Some(ms)) => format!("{d} in {ms:.1} ms"),
            _ => "none yet".to_owned(),
        };
        println!(
            "{:<30} {:<22} {:<5} {:<5} {:<6} {:>6} {:>7}  {last}",
            c.service.to_string(),
            c.dest.to_string(),
            c.kind.name(),
            state,
            c.code.as_deref().unwrap_or("-"),
            ago(c.since),
            c.checks
        );
    }
}

/// Whether the command line is a listing: `-L`, `-l`, `--list`, or a bundle starting so.
fn lists(argv: &[String]) -> bool {
    argv.iter().skip(1).take_while(|a| *a != "--").any(|a| {
        a == "--list" || (a.starts_with("-L") || a.starts_with("-l")) && !a.starts_with("--")
    })
}

fn main() -> ExitCode {
    // ipvsadm takes its arguments as bytes; Rust's strings are UTF-8, so a byte that is not
    // becomes U+FFFD here: such an argument can never name a host, port or number, and
    // ipvsadm's own error for it follows.
    let mut argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Additions {
        socket,
        json,
        checks,
    } = match take_additions(&mut argv) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(255);
        }
    };
    let socket = socket
        .or_else(|| std::env::var_os("RVS_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let client = match Client::new(socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvsadm: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let invoked_as_rvsadm = argv
        .first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("rvsadm"));

    if checks {
        if argv.len() > 1 {
            eprintln!("--checks takes no other option (but --json and --socket)");
            return ExitCode::from(2);
        }
        return match client.checks() {
            Ok(list) if json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Ok(list) => {
                print_checks(&list);
                ExitCode::SUCCESS
            }
            Err(ClientError::Unavailable(why))
            | Err(ClientError::Api(rvs_proto::ApiError { message: why, .. })) => {
                eprintln!("Can't initialize ipvs: {why}");
                ExitCode::from(2)
            }
        };
    }
    if json && !lists(&argv) {
        eprintln!("--json goes with -L (--list) only");
        return ExitCode::from(2);
    }
    if json {
        return match client.table() {
            Ok(t) => {
                println!("{}", serde_json::to_string_pretty(&t).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(ClientError::Unavailable(why))
            | Err(ClientError::Api(rvs_proto::ApiError { message: why, .. })) => {
                eprintln!("Can't initialize ipvs: {why}");
                ExitCode::from(2)
            }
        };
    }

    let resolver = System::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut rvsd = backend::Rvsd(client);
    let mut outcome = rvs_ipvsadm::run(&argv, &mut input, &mut rvsd, &resolver);
    let is_help = argv.get(1).is_some_and(|a| a == "-h" || a == "--help");
    if invoked_as_rvsadm && is_help {
        outcome.stdout.push_str(ADDITIONS);
    }
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    let _ = std::io::stdout().flush();
    ExitCode::from(outcome.code)
}
