//! The control API's connections, under limits: at most [`MAX_CONNECTIONS`] at once per
//! listener, one request per connection, its head read within [`HEAD_TIMEOUT`] and every later
//! read or write making progress within [`IO_TIMEOUT`], the head at most [`MAX_HEAD`] bytes and
//! the body at most [`MAX_BODY`]. A client that is idle, slow or oversized costs bounded time
//! and one descriptor, even before the TCP listener's token check, and is answered with an
//! [`ApiError`] JSON body like every other refusal.
//!
//! The head is read and checked here, with httparse (hyper's own parser), before hyper sees
//! the connection: hyper answers a request it cannot parse with an empty 400 or 431 of its
//! own, and has no header timeout for a connection that sends nothing. What passes is handed
//! to hyper with the bytes already read in front ([`Prefixed`]).
//!
//! When the process runs out of descriptors (the proxy plane's clients can use them all), the
//! accept loop frees a few it holds in reserve to take the next control connection, so the
//! control socket still answers.

use axum::Router;
use rvs_proto::{ApiError, ErrorKind};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

/// Connections served at once per listener; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Time to send the request's head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time any later read or write may wait for progress.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest request head.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest request body: a restore of about a million dests.
pub const MAX_BODY: u64 = 512 * 1024 * 1024;
/// How long a connection over the limit is read before its 503.
const BUSY_READ: Duration = Duration::from_secs(1);
/// Headers a request may have.
const MAX_HEADERS: usize = 64;
/// Descriptors held back for the control socket.
const RESERVE: usize = 4;

/// A listener the API is served on.
pub trait Accept: Send + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection.
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Descriptors kept open to be given up when the process has none left.
struct Reserve(Vec<std::fs::File>);

impl Reserve {
    fn refill(&mut self) {
        while self.0.len() < RESERVE {
            match std::fs::File::open("/dev/null") {
                Ok(f) => self.0.push(f),
                Err(_) => return,
            }
        }
    }

    fn release(&mut self) {
        self.0.clear();
    }
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    )
}

/// Serves `router` on `listener` until `stop` turns true, then waits (at most
/// [`IO_TIMEOUT`]) for the requests under way.
pub async fn serve<L: Accept>(
    listener: L,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut reserve = Reserve(Vec::new());
    loop {
        reserve.refill();
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) if out_of_descriptors(&e) => {
                reserve.release();
                match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control API: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "control API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    connection(stream, router).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut s = guarded(stream);
                    // Take the request's head first (briefly), so the client is reading
                    // when the answer comes rather than still writing into a closed socket.
                    let _ = tokio::time::timeout(BUSY_READ, read_head(&mut s)).await;
                    let e = ApiError::new(
                        ErrorKind::Unavailable,
                        format!("rvsd is serving {MAX_CONNECTIONS} control connections already; try again"),
                    );
                    answer(&mut s, 503, &e).await;
                });
            }
        }
    }
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(IO_TIMEOUT, permits.acquire_many(all)).await;
}

type Guarded<S> = Pin<Box<TimeoutStream<S>>>;

fn guarded<S: AsyncRead + AsyncWrite>(stream: S) -> Guarded<S> {
    let mut s = TimeoutStream::new(stream);
    s.set_read_timeout(Some(IO_TIMEOUT));
    s.set_write_timeout(Some(IO_TIMEOUT));
    Box::pin(s)
}

/// Why a request's head was not taken.
#[derive(Debug)]
enum HeadError {
    /// The client closed or failed before a whole head.
    Gone,
    /// Longer than [`MAX_HEAD`] or with more than [`MAX_HEADERS`] headers.
    TooLarge(String),
    /// Not HTTP/1.
    Malformed(String),
}

/// What the head says of the body.
struct Head {
    /// Bytes of head (and maybe body) read so far.
    read: Vec<u8>,
    content_length: Option<u64>,
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let mut content_length = None;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .ok_or_else(|| {
                                HeadError::Malformed("its Content-Length is not a number".into())
                            })?;
                        content_length = Some(v);
                    }
                }
                return Ok(Head {
                    read: buf,
                    content_length,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(HeadError::TooLarge(format!(
                    "its head is longer than {MAX_HEAD} bytes"
                )));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooLarge(format!(
                    "it has more than {MAX_HEADERS} headers"
                )));
            }
            Err(e) => return Err(HeadError::Malformed(format!("it is not HTTP/1.1 ({e})"))),
        }
    }
}

/// The status line's reason phrase for the statuses answered here.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Answers a request hyper never sees, and closes. The response is written here because it
/// is all this path needs: a fixed status line, two headers and a JSON body.
async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, error: &ApiError) {
    let body = serde_json::to_vec(error).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S, router: Router) {
    let mut stream = guarded(stream);
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => {
            let e = bad(format!(
                "the request's head did not arrive within {} s",
                HEAD_TIMEOUT.as_secs()
            ));
            return answer(&mut stream, 408, &e).await;
        }
        Ok(Err(HeadError::Gone)) => return,
        Ok(Err(HeadError::TooLarge(why))) => {
            return answer(
                &mut stream,
                431,
                &bad(format!("the request is refused: {why}")),
            )
            .await;
        }
        Ok(Err(HeadError::Malformed(why))) => {
            return answer(
                &mut stream,
                400,
                &bad(format!("the request is refused: {why}")),
            )
            .await;
        }
        Ok(Ok(head)) => head,
    };
    if head.content_length.is_some_and(|n| n > MAX_BODY) {
        let e = bad(format!(
            "the request body is larger than {} MiB",
            MAX_BODY >> 20
        ));
        return answer(&mut stream, 413, &e).await;
    }
    let io = Prefixed {
        prefix: head.read,
        at: 0,
        inner: stream,
    };
    let service = hyper_util::service::TowerToHyperService::new(router);
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_HEAD.max(8192) * 2)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "control API connection ended early");
    }
}

/// A stream with bytes already read from it put back in front.
struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn head_of(bytes: &[u8]) -> Result<Head, HeadError> {
        let mut r = bytes;
        read_head(&mut r).await
    }

    #[tokio::test]
    async fn heads_are_checked_before_hyper_sees_them() {
        let ok = head_of(b"POST /v1/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{}")
            .await
            .unwrap();
        assert_eq!(ok.content_length, Some(12));
        assert!(matches!(
            head_of(b"GARBAGE\x01\r\n\r\n").await,
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            head_of(b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n").await,
            Err(HeadError::Malformed(_))
        ));
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            head_of(req.as_bytes()).await,
            Err(HeadError::TooLarge(_))
        ));
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(
            head_of(long.as_bytes()).await,
            Err(HeadError::TooLarge(_))
        ));
        assert!(matches!(
            head_of(b"GET / HTTP/1.1\r\n").await,
            Err(HeadError::Gone)
        ));
    }
}
