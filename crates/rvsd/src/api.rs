//! The control API (HTTP + JSON, `/v1`), as an axum router over the shared [`Director`].
//!
//! Every error answer is an [`ApiError`] JSON body, malformed requests included. The routes
//! are listed once in [`ROUTES`]; a test keeps `openapi.json` in step with that list.

use crate::director::Director;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rvs_core::{Command, ErrnoClass};
use rvs_proto::{ApiError, ErrorKind, Health, SyncDaemon, SyncState};
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, MutexGuard};

/// The director, shared by the handlers.
pub type Shared = Arc<Mutex<Director>>;

/// Every route: method and path, as the OpenAPI document must list them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/table"),
    ("POST", "/v1/commands"),
    ("GET", "/v1/connections"),
    ("GET", "/v1/checks"),
    ("POST", "/v1/daemons"),
    ("DELETE", "/v1/daemons/{state}"),
    ("POST", "/v1/reload"),
    ("GET", "/v1/openapi.json"),
];

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// An [`ApiError`] with its HTTP status.
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

fn status(e: &ApiError) -> StatusCode {
    match &e.kind {
        ErrorKind::Table { error } => match error.errno_class() {
            ErrnoClass::NoService | ErrnoClass::NotFound => StatusCode::NOT_FOUND,
            ErrnoClass::Exists => StatusCode::CONFLICT,
            ErrnoClass::Range | ErrnoClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        },
        ErrorKind::DataPlane {
            error: rvs_core::DataPlaneError::Failed { .. },
        } => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::DataPlane { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::DaemonRunning => StatusCode::CONFLICT,
        ErrorKind::DaemonNotRunning => StatusCode::NOT_FOUND,
        ErrorKind::BadRequest | ErrorKind::Config => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NoDevice => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (status(&self.0), Json(self.0)).into_response()
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Director> {
    // A handler that panicked cannot leave the director half-changed (every change is
    // validated before it is made), so a poisoned lock is safe to take over.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses a request body, refusing fields the type does not have (`"schedular": "wrr"` must
/// not quietly create a wlc service), as the configuration file does: what the body says must
/// all be in what it parses to.
fn body<T: DeserializeOwned + serde::Serialize>(bytes: &Bytes, what: &str) -> Result<T, Failure> {
    let bad = |message: String| Failure(ApiError::new(ErrorKind::BadRequest, message));
    let given: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the request body is not a valid {what}: {e}")))?;
    let value: T = serde_json::from_value(given.clone())
        .map_err(|e| bad(format!("the request body is not a valid {what}: {e}")))?;
    let understood = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
    if let Some(field) = unknown_field(&given, &understood, "") {
        return Err(bad(format!(
            "the request body is not a valid {what}: unknown field `{field}`"
        )));
    }
    Ok(value)
}

/// The first field of `given` (by path) that `understood` lacks; a `null` may be left out.
fn unknown_field(
    given: &serde_json::Value,
    understood: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    match (given, understood) {
        (Value::Object(g), Value::Object(u)) => g.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            match u.get(k) {
                Some(w) => unknown_field(v, w, &path),
                None if v.is_null() => None,
                None => Some(path),
            }
        }),
        (Value::Array(g), Value::Array(u)) => g
            .iter()
            .zip(u)
            .enumerate()
            .find_map(|(i, (v, w))| unknown_field(v, w, &format!("{at}[{i}]"))),
        _ => None,
    }
}

async fn health(State(s): State<Shared>) -> Result<Json<Health>, Failure> {
    let d = lock(&s);
    Ok(Json(Health {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        dataplane: d.plane_name().to_owned(),
        services: d.service_count(),
        unrealised: d.unrealised(),
        plane_counters: d.plane_counters()?,
    }))
}

async fn table(State(s): State<Shared>) -> impl IntoResponse {
    lock(&s).view().map(Json).map_err(Failure)
}

async fn commands(State(s): State<Shared>, bytes: Bytes) -> Result<impl IntoResponse, Failure> {
    let command: Command = body(&bytes, "command")?;
    Ok(Json(tokio::task::block_in_place(|| {
        lock(&s).apply(command)
    })?))
}

/// Lists connections on the plane's own reader when it has one: the walk of its tables
/// (millions of flows on the xdp plane) happens after the director's lock is let go, so
/// commands and other readers do not wait for it.
async fn connections(State(s): State<Shared>) -> impl IntoResponse {
    let reader = lock(&s).connection_reader();
    let listed = match reader {
        Some(reader) => {
            tokio::task::block_in_place(|| reader.connections()).map_err(ApiError::from)
        }
        None => lock(&s).connections(),
    };
    listed.map(Json).map_err(Failure)
}

/// Lists the health checks: read from the checker after the director's lock is let go.
async fn checks(State(s): State<Shared>) -> impl IntoResponse {
    let reader = lock(&s).check_reader();
    Json(reader.map_or_else(Vec::new, |r| tokio::task::block_in_place(|| r())))
}

async fn start_daemon(State(s): State<Shared>, bytes: Bytes) -> Result<impl IntoResponse, Failure> {
    let daemon: SyncDaemon = body(&bytes, "sync daemon")?;
    Ok(Json(tokio::task::block_in_place(|| {
        lock(&s).start_daemon(daemon)
    })?))
}

async fn stop_daemon(
    State(s): State<Shared>,
    Path(state): Path<String>,
) -> Result<impl IntoResponse, Failure> {
    let state = match state.as_str() {
        "master" => SyncState::Master,
        "backup" => SyncState::Backup,
        other => {
            return Err(Failure(ApiError::new(
                ErrorKind::BadRequest,
                format!("no sync daemon role is named {other:?}; use master or backup"),
            )))
        }
    };
    Ok(Json(tokio::task::block_in_place(|| {
        lock(&s).stop_daemon(state)
    })?))
}

async fn reload(State(s): State<Shared>) -> Result<impl IntoResponse, Failure> {
    Ok(Json(tokio::task::block_in_place(|| lock(&s).reload())?))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Failure {
    Failure(ApiError::new(
        ErrorKind::NotFound,
        format!("no such endpoint: {method} {uri}"),
    ))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Failure {
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|(_, p)| route_matches(p, uri.path()))
        .map(|(m, _)| *m)
        .collect();
    Failure(ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "{} does not take {method}; it takes {}",
            uri.path(),
            allowed.join(", ")
        ),
    ))
}

/// Whether a route pattern (`/v1/daemons/{state}`) matches a path.
fn route_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
}

/// Turns every error answer that is not JSON yet (axum's own rejections: a body over the
/// limit, a wrong content type) into an [`ApiError`] body with the same status.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let message = if text.is_empty() {
        format!("the request is refused: {reason}")
    } else {
        format!("the request is refused: {reason}: {text}")
    };
    (status, Json(ApiError::new(ErrorKind::BadRequest, message))).into_response()
}

/// The API router.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/table", get(table))
        .route("/v1/commands", post(commands))
        .route("/v1/connections", get(connections))
        .route("/v1/checks", get(checks))
        .route("/v1/daemons", post(start_daemon))
        .route("/v1/daemons/{state}", delete(stop_daemon))
        .route("/v1/reload", post(reload))
        .route("/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(crate::http::MAX_BODY).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn(json_errors))
        .with_state(shared)
}

/// The router behind a bearer-token check, for the TCP listener.
pub fn router_with_token(shared: Shared, token: String) -> Router {
    let token = Arc::new(token);
    router(shared).layer(middleware::from_fn(move |req: Request, next: Next| {
        let token = Arc::clone(&token);
        async move {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer);
            if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                next.run(req).await
            } else {
                Failure(ApiError::new(
                    ErrorKind::Unauthorized,
                    "a valid bearer token is required",
                ))
                .into_response()
            }
        }
    }))
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is matched without regard
/// to case, as RFC 9110 says of authentication schemes.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Compares without leaking the position of the first difference through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Change, ConnectionEntry, ConnectionReader, DataPlane, DataPlaneError};
    use std::sync::mpsc;

    /// A plane whose reader waits, mid-listing, until the test lets it go.
    struct SlowReader {
        entered: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl ConnectionReader for SlowReader {
        fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(10));
            Ok(Vec::new())
        }
    }

    struct SlowPlane(Arc<SlowReader>);

    impl DataPlane for SlowPlane {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn check(&self, _: &[Change]) -> Result<(), DataPlaneError> {
            Ok(())
        }
        fn apply(&mut self, _: &[Change]) -> Result<(), DataPlaneError> {
            Ok(())
        }
        fn stats(&self) -> Result<Vec<rvs_core::ServiceStats>, DataPlaneError> {
            Ok(Vec::new())
        }
        fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
            panic!("listings go through the reader, not the plane under the lock")
        }
        fn connection_reader(&self) -> Option<Arc<dyn ConnectionReader>> {
            Some(Arc::clone(&self.0) as Arc<dyn ConnectionReader>)
        }
    }

    #[test]
    fn a_connection_listing_does_not_hold_the_director_while_the_plane_walks_its_tables() {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let reader = Arc::new(SlowReader {
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let dir = tempfile::tempdir().unwrap();
        let store = crate::state::StateStore::open(dir.path()).unwrap();
        let director = Director::start(store, Box::new(SlowPlane(reader)), None).unwrap();
        let shared: Shared = Arc::new(Mutex::new(director));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let listing = runtime.spawn(connections(State(Arc::clone(&shared))));
        entered
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the listing reached the plane's reader");
        // Mid-listing, the director is free: a command takes it at once and is applied.
        let applied = shared
            .try_lock()
            .expect("the director is not held by the listing")
            .apply(Command::Clear);
        assert!(applied.is_ok(), "{:?}", applied.err());
        release.send(()).unwrap();
        let response = runtime.block_on(listing).unwrap().into_response();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_uppercase(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn unknown_fields_are_found_at_any_depth() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            unknown_field(
                &v(r#"{"a":1,"b":{"c":2,"x":3}}"#),
                &v(r#"{"a":1,"b":{"c":2}}"#),
                ""
            ),
            Some("b.x".to_owned())
        );
        assert_eq!(
            unknown_field(
                &v(r#"{"a":null,"l":[{"k":1}]}"#),
                &v(r#"{"l":[{"k":1}]}"#),
                ""
            ),
            None
        );
        assert_eq!(
            unknown_field(&v(r#"{"l":[{"k":1,"z":0}]}"#), &v(r#"{"l":[{"k":1}]}"#), ""),
            Some("l[0].z".to_owned())
        );
    }

    #[test]
    fn route_patterns_match_their_paths() {
        assert!(route_matches("/v1/daemons/{state}", "/v1/daemons/master"));
        assert!(!route_matches("/v1/daemons/{state}", "/v1/daemons"));
        assert!(route_matches("/v1/table", "/v1/table"));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
