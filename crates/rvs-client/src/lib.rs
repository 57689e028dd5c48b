//! A client of rvsd's control API: HTTP/1.1 over its Unix socket (hyper), one connection per
//! call, driven by a private current-thread runtime so callers stay synchronous. rvsadm adapts
//! it to ipvsadm's backend; the demo and tests call it directly.

#![deny(missing_docs)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rvs_core::{Command, ConnectionEntry};
use rvs_proto::{ApiError, ErrorKind, SyncDaemon, SyncState, TableView};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

/// Why a call got no answer it could use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// rvsd answered with a refusal.
    #[error("{}", .0.message)]
    Api(ApiError),
    /// rvsd could not be reached or did not answer; the text says where and why.
    #[error("{0}")]
    Unavailable(String),
}

/// rvsd's API at a socket path.
pub struct Client {
    socket: PathBuf,
    runtime: Runtime,
}

impl Client {
    /// A client for the socket at `socket`.
    ///
    /// # Errors
    /// When the async runtime cannot start.
    pub fn new(socket: PathBuf) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self { socket, runtime })
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let timeout = answer_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        let socket = self.socket.clone();
        let (status, bytes) = self.runtime.block_on(async {
            loop {
                let attempt = exchange(&socket, method.clone(), path, body.clone().unwrap_or_default());
                let answer = tokio::time::timeout_at(deadline, attempt).await.map_err(|_| {
                    ClientError::Unavailable(format!(
                        "rvsd at {} did not answer within {} s (is it stopped?); RVS_TIMEOUT sets the wait",
                        socket.display(),
                        timeout.as_secs()
                    ))
                })??;
                // Busy with other control connections: wait a moment and ask again.
                if answer.0 == StatusCode::SERVICE_UNAVAILABLE
                    && tokio::time::Instant::now() + RETRY_AFTER < deadline
                {
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
                return Ok::<_, ClientError>(answer);
            }
        })?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Unavailable(format!("rvsd's answer is not understood: {e}"))
            });
        }
        let error = serde_json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| {
            ApiError::new(
                ErrorKind::BadRequest,
                format!(
                    "rvsd answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            )
        });
        Err(ClientError::Api(error))
    }
}

/// How long a call waits for rvsd's answer in all: `RVS_TIMEOUT` seconds, else
/// [`DEFAULT_TIMEOUT`].
fn answer_timeout() -> Duration {
    std::env::var("RVS_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// The wait for an answer when `RVS_TIMEOUT` is not set: long enough for a restore of a
/// large table, short enough that a stopped rvsd does not hang a script.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause before asking again when rvsd is busy (503).
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One request on a new connection: the status and the body.
async fn exchange(
    socket: &std::path::Path,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), ClientError> {
    let unavailable = ClientError::Unavailable;
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        unavailable(format!(
            "rvsd is not running (cannot connect to {}: {e})",
            socket.display()
        ))
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| {
            unavailable(format!(
                "rvsd at {} does not speak HTTP: {e}",
                socket.display()
            ))
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::builder()
        .method(method)
        .uri(format!("http://rvsd{path}"))
        .header("host", "rvsd")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unavailable(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(format!("rvsd closed the connection: {e}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unavailable(format!("rvsd's answer was cut: {e}")))?
        .to_bytes();
    Ok((status, bytes))
}

fn json<T: serde::Serialize>(value: &T) -> Option<Vec<u8>> {
    // Our own types always serialize; a failure here is a bug worth seeing at once.
    Some(serde_json::to_vec(value).expect("API request serializes"))
}

impl Client {
    /// Sends a command and returns the changes it made.
    ///
    /// # Errors
    /// The API's refusal, or [`ClientError::Unavailable`].
    pub fn apply_command(&self, command: &Command) -> Result<rvs_proto::Applied, ClientError> {
        self.call(Method::POST, "/v1/commands", json(command))
    }

    /// The whole table with counters.
    ///
    /// # Errors
    /// When rvsd is unreachable or refuses.
    pub fn table(&self) -> Result<TableView, ClientError> {
        self.call(Method::GET, "/v1/table", None)
    }

    /// Starts (records) a sync daemon.
    ///
    /// # Errors
    /// The API's refusal (one of that role runs, no such interface), or unreachable.
    pub fn start_daemon(&self, daemon: &SyncDaemon) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::POST, "/v1/daemons", json(daemon))
            .map(drop)
    }

    /// Stops a sync daemon.
    ///
    /// # Errors
    /// The API's refusal (none of that role runs), or unreachable.
    pub fn stop_daemon(&self, state: SyncState) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(
            Method::DELETE,
            &format!("/v1/daemons/{}", state.name()),
            None,
        )
        .map(drop)
    }

    /// The health checks.
    ///
    /// # Errors
    /// When rvsd is unreachable.
    pub fn checks(&self) -> Result<Vec<rvs_proto::CheckView>, ClientError> {
        self.call(Method::GET, "/v1/checks", None)
    }

    /// Live connections and persistence templates.
    ///
    /// # Errors
    /// When rvsd is unreachable.
    pub fn connections(&self) -> Result<Vec<ConnectionEntry>, ClientError> {
        self.call(Method::GET, "/v1/connections", None)
    }
}
