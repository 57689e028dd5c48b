//! An HTTP check (ldirectord `service=http`, keepalived `HTTP_GET`): a request for the path
//! with the Host header, the answer's status against the passing list, and its body against
//! `receive` (a regular expression) and `digest` (MD5). HTTP/1.0 or 1.1 over hyper; the body
//! is read up to [`BODY_LIMIT`]. https is refused until TLS is built (its spec is accepted by
//! the configuration so the importers can keep the name).

use super::tcp;
use crate::outcome::Code;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use rvs_core::{CheckKind, CheckSpec};
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Instant;

/// The most of a body a check reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// The statuses that pass without a `status` key (what keepalived and ldirectord take).
const DEFAULT_STATUS: &[(u16, u16)] = &[(200, 399)];

/// What an answer must be, compiled once per probe.
#[derive(Debug, Clone)]
pub struct Expect {
    statuses: Vec<(u16, u16)>,
    receive: Option<regex::Regex>,
    digest: Option<String>,
}

impl Expect {
    /// From a validated spec.
    ///
    /// # Errors
    /// When the status list or the regular expression do not parse (a spec that skipped
    /// validation).
    pub fn of(spec: &CheckSpec) -> Result<Self, String> {
        let statuses = match &spec.status {
            Some(s) => rvs_core::check::parse_status(s)?,
            None => DEFAULT_STATUS.to_vec(),
        };
        let receive = spec
            .receive
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            statuses,
            receive,
            digest: spec.digest.as_ref().map(|d| d.to_ascii_lowercase()),
        })
    }

    /// Judges an answer.
    #[must_use]
    pub fn judge(&self, status: u16, body: &[u8]) -> (Code, String) {
        if !self
            .statuses
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&status))
        {
            return (Code::L7Sts, format!("status {status}"));
        }
        if let Some(re) = &self.receive {
            if !re.is_match(&String::from_utf8_lossy(body)) {
                return (
                    Code::L7Rsp,
                    format!(
                        "status {status}, but the body does not match {:?}",
                        re.as_str()
                    ),
                );
            }
        }
        if let Some(want) = &self.digest {
            let got = Md5::digest(body).iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            if &got != want {
                return (
                    Code::L7Rsp,
                    format!("status {status}, but the body's MD5 is {got}, not {want}"),
                );
            }
        }
        (Code::L7Ok, format!("status {status}"))
    }
}

/// The check, bounded by the spec's timeout from connect to the end of the body.
pub async fn check(spec: &CheckSpec, target: SocketAddr) -> (Code, String) {
    if spec.kind == CheckKind::Https {
        return (
            Code::L6Rsp,
            "https checks are not built in this rvs yet".to_owned(),
        );
    }
    let expect = match Expect::of(spec) {
        Ok(e) => e,
        Err(e) => return (Code::L7Rsp, format!("the check's settings: {e}")),
    };
    let timeout = spec.timeout.duration();
    let started = Instant::now();
    let stream = match tcp::connect(target, timeout).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    let left = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, exchange(spec, target, stream)).await {
        Ok(Ok((status, body))) => expect.judge(status, &body),
        Ok(Err(e)) => (Code::L7Rsp, e),
        Err(_) => (
            Code::L7Tout,
            format!("no complete answer in {} ms", timeout.as_millis()),
        ),
    }
}

/// Sends the request on `stream` and reads the status and the body.
async fn exchange(
    spec: &CheckSpec,
    target: SocketAddr,
    stream: tokio::net::TcpStream,
) -> Result<(u16, Bytes), String> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = spec.host.clone().unwrap_or_else(|| match target {
        SocketAddr::V4(a) if a.port() == 80 => a.ip().to_string(),
        SocketAddr::V6(a) if a.port() == 80 => format!("[{}]", a.ip()),
        other => other.to_string(),
    });
    let version = match spec.http_version.as_deref() {
        Some("1.0") => hyper::Version::HTTP_10,
        _ => hyper::Version::HTTP_11,
    };
    let method = match spec.method.as_deref() {
        Some("HEAD") => hyper::Method::HEAD,
        _ => hyper::Method::GET,
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(spec.path.as_deref().unwrap_or("/"))
        .version(version)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "rvs-health")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("the request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no valid HTTP answer: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("status {status}, reading the body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CheckSpec {
        CheckSpec::new(CheckKind::Http)
    }

    #[test]
    fn answers_are_judged_by_status_then_body_then_digest() {
        let e = Expect::of(&spec()).unwrap();
        assert_eq!(e.judge(200, b"").0, Code::L7Ok);
        assert_eq!(e.judge(302, b"").0, Code::L7Ok);
        assert_eq!(e.judge(404, b""), (Code::L7Sts, "status 404".to_owned()));
        let e = Expect::of(&CheckSpec {
            status: Some("200".into()),
            receive: Some("Working F.ne".into()),
            ..spec()
        })
        .unwrap();
        assert_eq!(e.judge(200, b"<p>Working Fine</p>").0, Code::L7Ok);
        assert_eq!(e.judge(200, b"Broken").0, Code::L7Rsp);
        assert_eq!(e.judge(302, b"Working Fine").0, Code::L7Sts);
        // md5("Working Fine\n")
        let e = Expect::of(&CheckSpec {
            digest: Some("3A8D3C4FE1A0B7D0A4E3F1B7C9D5E6F1".into()),
            ..spec()
        })
        .unwrap();
        let (code, detail) = e.judge(200, b"x");
        assert_eq!(code, Code::L7Rsp);
        assert!(
            detail.contains("9dd4e461268c8034f5c8564e155c67a6"),
            "{detail}"
        );
    }
}
