//! Wiring: restore the director, bind the control socket (and the TCP API if asked), serve until
//! SIGTERM or SIGINT, reload on SIGHUP.

use crate::api::{router, router_with_token, Shared};
use crate::director::{Director, StartError};
use crate::plane::{self, PlaneKind};
use crate::state::StateStore;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};

/// What rvsd was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--control`.
    pub control: PathBuf,
    /// `--dataplane`.
    pub dataplane: PlaneKind,
    /// `--interface` (xdp plane).
    pub interfaces: Vec<String>,
    /// `--xdp-mode`: `None` tries native, then generic.
    pub xdp_mode: Option<rvs_xdp::XdpMode>,
    /// `--api`.
    pub api: Option<SocketAddr>,
    /// `--api-token-file`.
    pub api_token_file: Option<PathBuf>,
    /// `--workers`: the proxy plane's listening sockets per service (one per runtime worker).
    pub workers: usize,
    /// `--conn-table`: flows the xdp plane's connection tables hold.
    pub conn_table: u32,
}

/// Why rvsd stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The plane cannot run.
    #[error("{0}")]
    Plane(String),
    /// The state or config was refused.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The state directory could not be opened.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A listener could not be set up.
    #[error("{what} {path}: {source}")]
    Listen {
        /// What was being set up.
        what: &'static str,
        /// Where.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// Another rvsd answers on the socket.
    #[error("another rvsd is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// `--control` names something that is not a socket; rvsd leaves it alone.
    #[error("--control {0} exists and is not a socket; rvsd will not replace it: choose another path or remove it yourself")]
    NotASocket(PathBuf),
    /// `--api` without a usable token.
    #[error("--api needs --api-token-file with a non-empty token: {0}")]
    Token(String),
}

fn listen_err(
    what: &'static str,
    path: impl std::fmt::Display,
) -> impl FnOnce(std::io::Error) -> ServeError {
    let path = path.to_string();
    move |source| ServeError::Listen { what, path, source }
}

/// Binds the control socket, mode 0600, replacing a stale one.
fn bind_control(path: &Path) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(listen_err("cannot create directory", dir.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(ServeError::NotASocket(path.to_owned()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::AlreadyRunning(path.to_owned()));
        }
        std::fs::remove_file(path)
            .map_err(listen_err("cannot remove the stale socket", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(listen_err("cannot bind the control socket", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(listen_err("cannot set mode 0600 on", path.display()))?;
    Ok(listener)
}

fn read_token(path: Option<&Path>) -> Result<String, ServeError> {
    let path = path.ok_or_else(|| ServeError::Token("no --api-token-file given".to_owned()))?;
    let token = std::fs::read_to_string(path)
        .map_err(|e| ServeError::Token(format!("{}: {e}", path.display())))?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(ServeError::Token(format!("{} is empty", path.display())));
    }
    for warning in token_warnings(path, &token) {
        tracing::warn!("{warning}");
    }
    Ok(token)
}

/// The shortest token rvsd takes without a warning.
const SHORT_TOKEN: usize = 16;

/// What is unsafe about a token file: readable by others, or a token easy to guess.
fn token_warnings(path: &Path, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            out.push(format!(
                "--api-token-file {} is readable by other users (mode {mode:03o}): chmod 600 it",
                path.display()
            ));
        }
    }
    if token.len() < SHORT_TOKEN {
        out.push(format!(
            "the API token in {} is {} characters long; use at least {SHORT_TOKEN} random ones",
            path.display(),
            token.len()
        ));
    }
    out
}

/// Raises the soft limit on open files to the hard one (a director holds two descriptors per
/// proxied connection), and says what it is.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "open-file limit raised"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// Runs rvsd until SIGTERM or SIGINT.
///
/// # Errors
/// [`ServeError`] when rvsd cannot start; it then changes nothing on disk.
pub async fn run(opts: Options) -> Result<(), ServeError> {
    run_until(opts, std::future::pending()).await
}

/// Runs rvsd until SIGTERM, SIGINT or `stop` completes.
///
/// # Errors
/// [`ServeError`] when rvsd cannot start; it then changes nothing on disk.
pub async fn run_until(
    opts: Options,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    raise_fd_limit();
    // The state directory's lock comes first: a second rvsd stops here, before it binds a VIP.
    let store = StateStore::open(&opts.state_dir)?;
    let plane = plane::build(
        opts.dataplane,
        &opts.interfaces,
        opts.xdp_mode,
        opts.conn_table,
        opts.workers,
    )
    .map_err(ServeError::Plane)?;
    let token = opts
        .api
        .map(|_| read_token(opts.api_token_file.as_deref()))
        .transpose()?;
    let director = Director::start(store, plane, opts.config.clone())?;
    let shared: Shared = Arc::new(Mutex::new(director));

    let control = bind_control(&opts.control)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let unix_server = crate::http::serve(control, router(Arc::clone(&shared)), stop_rx.clone());
    let tcp_server = match (opts.api, token) {
        (Some(addr), Some(token)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(listen_err("cannot bind the API on", addr))?;
            tracing::info!(%addr, "TCP API listening (bearer token required)");
            Some(crate::http::serve(
                l,
                router_with_token(Arc::clone(&shared), token),
                stop_rx.clone(),
            ))
        }
        _ => None,
    };
    tracing::info!(control = %opts.control.display(), dataplane = ?opts.dataplane, "rvsd ready");

    let signals = {
        let shared = Arc::clone(&shared);
        async move {
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => {
                        let result = tokio::task::block_in_place(|| shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).reload());
                        match result {
                            Ok(a) => tracing::info!(changes = a.changes.len(), "SIGHUP: config reloaded"),
                            Err(e) => tracing::warn!(error = %e.message, "SIGHUP: reload refused; nothing changed"),
                        }
                    }
                }
            }
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
        }
    };
    let retry = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::director::RETRY_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tokio::task::block_in_place(|| {
                    shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .retry_unrealised();
                });
            }
        })
    };
    let health = tokio::spawn(crate::health::run(Arc::clone(&shared)));
    let unix = tokio::spawn(unix_server);
    let tcp = tokio::spawn(async move {
        if let Some(s) = tcp_server {
            s.await;
        }
    });
    signals.await;
    retry.abort();
    health.abort();
    let _ = unix.await;
    let _ = tcp.await;
    let _ = std::fs::remove_file(&opts.control);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_readable_or_short_token_file_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = token_warnings(&path, "short");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("mode 644") && w[1].contains("5 characters"),
            "{w:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(token_warnings(&path, "0123456789abcdef0123").is_empty());
    }
}
