//! `rvsadm` (and `ipvsadm`, through a symlink): ipvsadm 1.31's command line over rvsd.
//!
//! rvs's own additions are long options ipvsadm does not have:
//! `--socket PATH` (where rvsd listens; also `RVS_SOCKET`; default /run/rvs/rvsd.sock) and
//! `--json` (with `-L`: the table as JSON, as the API returns it).

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
  --proxy-protocol v1|v2              with -A/-E: send real servers a PROXY protocol header
  (--socket and --json are taken wherever they stand before --; RVS_TIMEOUT: seconds to wait)
";

/// Takes rvs's own options out of argv: the socket path and whether JSON was asked for.
fn take_additions(argv: &mut Vec<String>) -> Result<(Option<PathBuf>, bool), String> {
    let mut socket = None;
    let mut json = false;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            break;
        }
        if a == "--json" {
            json = true;
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
    Ok((socket, json))
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
    let (socket, json) = match take_additions(&mut argv) {
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
