//! `rvsd`: the director daemon's command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rvsd::demo::{demo, DemoOptions};
use rvsd::plane::PlaneKind;
use rvsd::server::{run, Options};
use std::net::SocketAddr;
use std::path::PathBuf;

/// rvs director daemon.
#[derive(Debug, Parser)]
#[command(
    name = "rvsd",
    version,
    about = "The rvs director: one table, a control API, a data plane."
)]
struct Cli {
    /// Declarative configuration (TOML); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the table is kept across restarts.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/rvs")]
    state_dir: PathBuf,
    /// The control socket (mode 0600); rvsadm finds it with --socket or RVS_SOCKET.
    #[arg(long, value_name = "PATH", default_value = "/run/rvs/rvsd.sock")]
    control: PathBuf,
    /// The data plane: proxy (userspace TCP/UDP relay, no root), none (hold the table, move no
    /// traffic) or xdp.
    #[arg(long, value_name = "PLANE", default_value = "proxy")]
    dataplane: PlaneKind,
    /// Interfaces for the xdp plane (repeatable).
    #[arg(long = "interface", value_name = "IF")]
    interfaces: Vec<String>,
    /// XDP attach mode: auto (native where the driver has it, else generic), native, generic.
    #[arg(long, value_name = "MODE", default_value = "auto")]
    xdp_mode: String,
    /// Also serve the API on this TCP address (needs --api-token-file).
    #[arg(long, value_name = "ADDR")]
    api: Option<SocketAddr>,
    /// File holding the bearer token for --api.
    #[arg(long, value_name = "FILE")]
    api_token_file: Option<PathBuf>,
    /// Worker threads (and the proxy plane's listening sockets per service); default: the
    /// CPUs this process may run on (its affinity mask or cgroup quota).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// Flows the xdp plane's connection tables hold (each of IPv4, IPv6, NAT replies and
    /// persistence templates); the least recently used go first when one is full.
    #[arg(long, value_name = "FLOWS", default_value_t = rvs_xdp::DEFAULT_CONN_TABLE,
          value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    conn_table: u32,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run a complete demo director on loopback: no root, no config file.
    Demo {
        /// The virtual service's address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory for the demo's socket and state (default: a new one under /tmp).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
    },
    /// Prepare this host as a real server (VIPs on lo, ARP sysctls, tunnel decapsulation),
    /// stay in the foreground, and undo it all on SIGTERM or Ctrl-C.
    Realserver {
        /// A virtual IPv4 or IPv6 address this real server answers for (repeatable).
        #[arg(long = "vip", value_name = "VIP", required = true)]
        vips: Vec<std::net::IpAddr>,
        /// How the director forwards: dr (direct routing) or tun (a tunnel: IP-in-IP,
        /// IPv6-in-IPv6, GRE, and GUE with --gue-port).
        #[arg(long, value_name = "MODE")]
        mode: String,
        /// The interface packets arrive on (required for tun).
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        /// The UDP port of GUE tunnels (the director's --tun-port), for tun mode.
        #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
        gue_port: Option<u16>,
    },
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Some(Sub::Realserver {
        vips,
        mode,
        interface,
        gue_port,
    }) = &cli.command
    {
        return realserver(vips, mode, interface.as_deref(), *gue_port);
    }
    if let Some(Sub::Demo {
        listen,
        dir,
        duration,
    }) = cli.command
    {
        let own_dir = dir.is_none();
        let dir = dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("rvs-demo-{}", std::process::id()))
        });
        let opts = DemoOptions {
            listen,
            dir: dir.clone(),
            duration: duration.map(std::time::Duration::from_secs),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let result = runtime
            .block_on(demo(opts))
            .map_err(|e| anyhow::anyhow!("rvsd demo: {e}"));
        if own_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return result;
    }
    let opts = Options {
        config: cli.config,
        state_dir: cli.state_dir,
        control: cli.control,
        dataplane: cli.dataplane,
        interfaces: cli.interfaces,
        xdp_mode: rvsd::plane::xdp_mode(&cli.xdp_mode).map_err(anyhow::Error::msg)?,
        api: cli.api,
        api_token_file: cli.api_token_file,
        workers: workers(cli.workers),
        conn_table: cli.conn_table,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(run(opts))
        .map_err(|e| anyhow::anyhow!("rvsd: {e}"))
}

/// `--workers`, or the CPUs this process may run on.
fn workers(flag: Option<u16>) -> usize {
    flag.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        usize::from,
    )
}

/// `rvsd realserver`: prepare, wait for SIGTERM or Ctrl-C, undo.
fn realserver(
    vips: &[std::net::IpAddr],
    mode: &str,
    interface: Option<&str>,
    gue_port: Option<u16>,
) -> anyhow::Result<()> {
    let mode = match mode {
        "dr" => rvs_host::realserver::Mode::Dr,
        "tun" => rvs_host::realserver::Mode::Tun,
        other => anyhow::bail!("no real-server mode is named {other:?}; use dr or tun"),
    };
    let prepared = rvs_host::realserver::RealServer::prepare(vips, mode, interface, gue_port)
        .map_err(|e| anyhow::anyhow!("rvsd realserver: {e}"))?;
    tracing::info!(vips = vips.len(), ?mode, "real server ready");
    println!(
        "rvsd realserver: ready ({} VIP(s), {mode:?}); SIGTERM or Ctrl-C undoes it",
        vips.len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        anyhow::Ok(())
    })?;
    drop(prepared);
    Ok(())
}
