//! What a health check is, as configuration: its type, what it asks and expects, and its
//! timing. Pure data with its validation; probing is rvs-health's. The names are the
//! configuration file's (`[service.check]`, `[service.real.check]`) and the API's.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The kinds of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A TCP connect.
    Tcp,
    /// An HTTP request.
    Http,
    /// An HTTP request over TLS.
    Https,
    /// A DNS query.
    Dns,
    /// An SMTP greeting, EHLO and QUIT.
    Smtp,
    /// A UDP request and its reply.
    Udp,
    /// ICMP or ICMPv6 echo.
    Ping,
    /// A program's exit code (keepalived `MISC_CHECK`, ldirectord `external`).
    External,
    /// A file's content (keepalived `FILE_CHECK`).
    File,
}

impl CheckKind {
    /// The name in configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Https => "https",
            Self::Dns => "dns",
            Self::Smtp => "smtp",
            Self::Udp => "udp",
            Self::Ping => "ping",
            Self::External => "external",
            Self::File => "file",
        }
    }

    /// Whether it speaks HTTP.
    #[must_use]
    pub const fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A duration in configuration: seconds as a number (`1.5`), kept in milliseconds. Any number
/// is read (so a negative one can be refused by name); [`validate`] wants it above 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seconds(pub i64);

impl Seconds {
    /// From whole milliseconds.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// As a duration (0 for a negative one).
    #[must_use]
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(
            clippy::cast_precision_loss,
            reason = "milliseconds of a check interval"
        )]
        let s = self.0 as f64 / 1000.0;
        write!(f, "{s}")
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[allow(
            clippy::cast_precision_loss,
            reason = "milliseconds of a check interval"
        )]
        let v = self.0 as f64 / 1000.0;
        s.serialize_f64(v)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || v.abs() > 1e9 {
            return Err(serde::de::Error::custom(format!(
                "{v} is not a number of seconds"
            )));
        }
        #[allow(clippy::cast_possible_truncation, reason = "bounded just above")]
        Ok(Self((v * 1000.0).round() as i64))
    }
}

const fn default_interval() -> Seconds {
    Seconds(2000)
}
const fn default_timeout() -> Seconds {
    Seconds(2000)
}
const fn default_rise() -> u32 {
    1
}
const fn default_fall() -> u32 {
    3
}

/// A health check: what to ask a real server and what to expect, and how often.
///
/// Defaults: every 2 s with a 2 s timeout; up after 1 pass (a checked dest starts down, so
/// a restarted director serves it after its first passing check), down after 3 failures
/// (HAProxy's `fall`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The kind (`type = "http"`).
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// The port to check (default: the dest's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// HTTP: the request's path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HTTP: the `Host` header (ldirectord's `virtualhost`; default the dest's address); for
    /// https also the name sent by SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// HTTP: `GET` (default) or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// HTTP: `1.0` or `1.1` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    /// HTTP: the statuses that pass, as a list of codes and ranges (`"200-299,301"`;
    /// default `200-399`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// HTTP: a regular expression the body must match (a plain substring matches itself;
    /// ldirectord's `receive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<String>,
    /// HTTP: the MD5 digest of the body, in hex (keepalived's `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Time between checks.
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    /// How long one check may take (connect and answer).
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Time between checks while the verdict is changing (HAProxy's `fastinter`; default the
    /// interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastinter: Option<Seconds>,
    /// Time between checks while down (HAProxy's `downinter`; default the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downinter: Option<Seconds>,
    /// Passes in a row that bring a dest up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failures in a row that take it down.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

impl CheckSpec {
    /// A check of `kind` with the defaults.
    #[must_use]
    pub const fn new(kind: CheckKind) -> Self {
        Self {
            kind,
            port: None,
            path: None,
            host: None,
            method: None,
            http_version: None,
            status: None,
            receive: None,
            digest: None,
            interval: default_interval(),
            timeout: default_timeout(),
            fastinter: None,
            downinter: None,
            rise: default_rise(),
            fall: default_fall(),
        }
    }
}

/// An HTTP status list (`"200-299,301"`) as inclusive ranges.
///
/// # Errors
/// A sentence naming the part that is not a status or a range of them.
pub fn parse_status(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let code = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("{:?} is not an HTTP status (100..=599)", s.trim()))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let c = code(part)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("{:?} is an empty range", part.trim()));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

/// Checks a check: keys its type takes, values in range. The error names the key.
///
/// # Errors
/// A sentence naming the key and what is wrong with it.
pub fn validate(spec: &CheckSpec) -> Result<(), String> {
    let kind = spec.kind;
    if !matches!(kind, CheckKind::Tcp | CheckKind::Http | CheckKind::Https) {
        return Err(format!(
            "type {kind}: this rvs checks by tcp, http and https so far"
        ));
    }
    let http_keys = [
        ("path", spec.path.is_some()),
        ("host", spec.host.is_some()),
        ("method", spec.method.is_some()),
        ("http_version", spec.http_version.is_some()),
        ("status", spec.status.is_some()),
        ("receive", spec.receive.is_some()),
        ("digest", spec.digest.is_some()),
    ];
    if !kind.is_http() {
        if let Some((key, _)) = http_keys.iter().find(|(_, set)| *set) {
            return Err(format!("{key} is for http and https checks, not {kind}"));
        }
    }
    if let Some(p) = &spec.path {
        if !p.starts_with('/') || p.chars().any(char::is_whitespace) {
            return Err(format!("path {p:?} must start with / and hold no spaces"));
        }
    }
    if let Some(h) = &spec.host {
        if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("host {h:?} is not a host name"));
        }
    }
    match spec.method.as_deref() {
        None | Some("GET") => {}
        Some("HEAD") if spec.receive.is_some() || spec.digest.is_some() => {
            return Err(
                "method HEAD gets no body for receive or digest to look at: use GET".into(),
            );
        }
        Some("HEAD") => {}
        Some(m) => return Err(format!("method {m:?} is not GET or HEAD")),
    }
    match spec.http_version.as_deref() {
        None | Some("1.0" | "1.1") => {}
        Some(v) => return Err(format!("http_version {v:?} is not 1.0 or 1.1")),
    }
    if let Some(s) = &spec.status {
        parse_status(s).map_err(|e| format!("status: {e}"))?;
    }
    if let Some(r) = &spec.receive {
        regex::Regex::new(r)
            .map_err(|e| format!("receive {r:?} is not a regular expression: {e}"))?;
    }
    if let Some(d) = &spec.digest {
        if d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("digest {d:?} is not an MD5 digest (32 hex digits)"));
        }
    }
    if spec.port == Some(0) {
        return Err("port 0 is not a port".into());
    }
    let times = [
        ("interval", Some(spec.interval)),
        ("timeout", Some(spec.timeout)),
        ("fastinter", spec.fastinter),
        ("downinter", spec.downinter),
    ];
    for (key, value) in times {
        if let Some(v) = value {
            if v.0 <= 0 {
                return Err(format!("{key} {v} s must be above 0"));
            }
            if v.0 > 86_400_000 {
                return Err(format!("{key} {v} s is more than a day"));
            }
        }
    }
    for (key, value) in [("rise", spec.rise), ("fall", spec.fall)] {
        if value == 0 {
            return Err(format!("{key} 0: at least one check decides"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_codes_and_ranges() {
        assert_eq!(
            parse_status("200-299, 301").unwrap(),
            [(200, 299), (301, 301)]
        );
        assert!(parse_status("2xx").unwrap_err().contains("\"2xx\""));
        assert!(parse_status("300-200").unwrap_err().contains("empty range"));
        assert!(parse_status("99").is_err());
    }

    #[test]
    fn each_bad_setting_is_named() {
        let http = CheckSpec::new(CheckKind::Http);
        let cases: Vec<(CheckSpec, &str)> = vec![
            (
                CheckSpec {
                    path: Some("/x".into()),
                    ..CheckSpec::new(CheckKind::Tcp)
                },
                "path is for http",
            ),
            (
                CheckSpec {
                    interval: Seconds(0),
                    ..http.clone()
                },
                "interval 0 s must be above 0",
            ),
            (
                CheckSpec {
                    timeout: Seconds(-1000),
                    ..http.clone()
                },
                "timeout -1 s must be above 0",
            ),
            (
                CheckSpec {
                    rise: 0,
                    ..http.clone()
                },
                "rise 0",
            ),
            (
                CheckSpec {
                    method: Some("POST".into()),
                    ..http.clone()
                },
                "method \"POST\"",
            ),
            (
                CheckSpec {
                    method: Some("HEAD".into()),
                    receive: Some("ok".into()),
                    ..http.clone()
                },
                "method HEAD gets no body",
            ),
            (
                CheckSpec {
                    digest: Some("abc".into()),
                    ..http.clone()
                },
                "digest \"abc\"",
            ),
            (
                CheckSpec {
                    status: Some("2xx".into()),
                    ..http.clone()
                },
                "status: \"2xx\"",
            ),
            (
                CheckSpec {
                    path: Some("index.html".into()),
                    ..http.clone()
                },
                "must start with /",
            ),
            (CheckSpec::new(CheckKind::Dns), "type dns"),
        ];
        for (spec, want) in cases {
            let e = validate(&spec).unwrap_err();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
        validate(&http).unwrap();
    }

    #[test]
    fn seconds_read_as_numbers_and_keep_their_sign() {
        #[derive(Deserialize)]
        struct T {
            s: Seconds,
        }
        let t: T = serde_json::from_str(r#"{"s": 1.5}"#).unwrap();
        assert_eq!(t.s, Seconds(1500));
        let t: T = serde_json::from_str(r#"{"s": -2}"#).unwrap();
        assert_eq!(t.s, Seconds(-2000));
    }
}
