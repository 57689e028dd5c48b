//! rvs's configuration: the declarative file (TOML) rvsd loads at start and on reload, read
//! into one [`Config`]. Today it holds the table (services, their real servers, timeouts);
//! health checks, agents, VRRP and the planes' settings join it, and the importers of
//! keepalived.conf, ldirectord.cf and lvs.cf produce the same `Config`. Pure: no I/O but
//! reading the file in [`load`].
//!
//! ```toml
//! [timeouts]            # optional; 0 or absent keeps the kernel default
//! tcp = 900
//!
//! [[service]]
//! tcp = "198.18.0.1:80"         # or udp = ..., sctp = ..., or fwmark = 1 (ipv6 = true)
//! scheduler = "wrr"             # default wlc
//! persistent = 300              # seconds; absent = not persistent
//! netmask = "255.255.255.0"     # IPv4 mask, or a prefix length for IPv6 ("64")
//! sched_flags = ["flag-1"]      # ipvsadm's -b names
//! ops = false                   # one-packet scheduling
//! pe = "sip"
//! proxy_protocol = "v2"         # send a PROXY protocol header (v1 or v2) to real servers
//! on_failure = "quiesce"        # or "remove": what a real server failing its check becomes
//! fallback = "127.0.0.1:80"     # sorry server, only while no real server is up
//! quorum = 1                    # least total weight up; below it the fallback serves
//! hysteresis = 0                # band around the quorum
//! initial_state = "down"        # or "up": checked real servers at start, restart and reload
//!
//! [service.check]               # for every real server of the service
//! type = "http"                 # tcp http https (dns smtp udp ping external file: not yet)
//! path = "/index.html"
//! host = "www.example.com"
//! status = "200-299"
//! receive = "Working Fine"      # regular expression (or substring) of the body
//! interval = 1.0                # seconds
//! timeout = 3.0
//! rise = 1
//! fall = 1
//!
//! [[service.real]]
//! addr = "198.18.1.1:8080"      # port defaults to the service's
//! forward = "masq"              # masq (nat) | route (dr, default) | tunnel (tun, ipip)
//! weight = 1
//! u_threshold = 0
//! l_threshold = 0
//! tun_type = "ipip"             # ipip | gue | gre (tunnel only)
//! tun_port = 6080               # gue only
//! tun_csum = "nocsum"           # nocsum | csum | remcsum
//!
//! [service.real.check]          # this real server's own check, in place of the service's
//! type = "tcp"
//! ```
//!
//! The file describes the whole table: on reload, services and dests it does not name are
//! removed, as keepalived does. Raw file forms are `File*`; they become an
//! [`rvs_core::TableConfig`] that is validated as a whole before anything is applied.

use rvs_core::{
    CheckSpec, DestConfig, Family, ForwardMethod, HealthPolicy, OnFailure, PersistMask,
    Persistence, Protocol, SchedFlags, ServiceConfig, ServiceEntry, ServiceKey, Table, TableConfig,
    Timeouts, Tunnel, TunnelCsum, TunnelKind,
};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the service or key.
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    timeouts: Option<FileTimeouts>,
    #[serde(default, rename = "service")]
    services: Vec<FileService>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTimeouts {
    #[serde(default)]
    tcp: u32,
    #[serde(default)]
    tcp_fin: u32,
    #[serde(default)]
    udp: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileService {
    tcp: Option<String>,
    udp: Option<String>,
    sctp: Option<String>,
    fwmark: Option<u32>,
    #[serde(default)]
    ipv6: bool,
    scheduler: Option<String>,
    #[serde(default)]
    sched_flags: Vec<String>,
    persistent: Option<u32>,
    netmask: Option<String>,
    pe: Option<String>,
    #[serde(default)]
    ops: bool,
    proxy_protocol: Option<String>,
    on_failure: Option<String>,
    fallback: Option<String>,
    #[serde(default)]
    quorum: u32,
    #[serde(default)]
    hysteresis: u32,
    initial_state: Option<String>,
    check: Option<CheckSpec>,
    #[serde(default, rename = "real")]
    reals: Vec<FileDest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDest {
    addr: String,
    forward: Option<String>,
    weight: Option<u32>,
    #[serde(default)]
    u_threshold: u32,
    #[serde(default)]
    l_threshold: u32,
    tun_type: Option<String>,
    tun_port: Option<u16>,
    tun_csum: Option<String>,
    check: Option<CheckSpec>,
}

/// Everything a configuration file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// The table: services, their dests, the timeouts.
    pub table: TableConfig,
}

/// Reads and validates a configuration file.
///
/// # Errors
/// [`ConfigError`] naming the file and the problem.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    parse(&text).map_err(err)
}

/// Parses configuration text into a validated, normalised configuration.
///
/// # Errors
/// A message naming the problem.
pub fn parse(text: &str) -> Result<Config, String> {
    let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut config = TableConfig::default();
    if let Some(t) = file.timeouts {
        let d = Timeouts::default();
        let or = |v: u32, dflt: u32| if v == 0 { dflt } else { v };
        config.timeouts = Timeouts {
            tcp: or(t.tcp, d.tcp),
            tcp_fin: or(t.tcp_fin, d.tcp_fin),
            udp: or(t.udp, d.udp),
        };
    }
    for (i, s) in file.services.iter().enumerate() {
        config
            .services
            .push(service(s).map_err(|e| format!("service #{}: {e}", i + 1))?);
    }
    // Each service on its own first, so an error names the service it is about; then the
    // whole, which also normalises (e.g. route dests take the service port).
    for (i, entry) in config.services.iter().enumerate() {
        let one = TableConfig {
            services: vec![entry.clone()],
            ..TableConfig::default()
        };
        Table::from_config(&one)
            .map_err(|e| format!("service #{} ({}): {}", i + 1, entry.config.key, e.root()))?;
    }
    let table = Table::from_config(&config).map_err(|e| e.root().to_string())?;
    Ok(Config {
        table: table.config(),
    })
}

fn addr(s: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{s:?} is not an address or address:port"))?;
    default_port
        .map(|p| SocketAddr::new(ip, p))
        .ok_or_else(|| format!("{s:?} needs a port"))
}

fn service(s: &FileService) -> Result<ServiceEntry, String> {
    let keys = [
        s.tcp.is_some(),
        s.udp.is_some(),
        s.sctp.is_some(),
        s.fwmark.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() != 1 {
        return Err("give exactly one of tcp, udp, sctp or fwmark".to_owned());
    }
    let key = if let Some(mark) = s.fwmark {
        ServiceKey::FwMark {
            mark,
            family: if s.ipv6 { Family::Inet6 } else { Family::Inet },
        }
    } else {
        let (protocol, text) = match (&s.tcp, &s.udp, &s.sctp) {
            (Some(t), _, _) => (Protocol::Tcp, t),
            (_, Some(u), _) => (Protocol::Udp, u),
            (_, _, Some(c)) => (Protocol::Sctp, c),
            _ => unreachable!("one key is set"),
        };
        ServiceKey::Inet {
            protocol,
            addr: addr(text, None)?,
        }
    };
    let scheduler = s.scheduler.as_deref().unwrap_or("wlc");
    let scheduler = scheduler
        .parse()
        .map_err(|_| format!("{key}: no scheduler is named {scheduler:?}"))?;
    let mut flags = 0;
    for f in &s.sched_flags {
        flags |= match f.as_str() {
            "flag-1" | "sh-fallback" | "mh-fallback" => SchedFlags::SCHED1,
            "flag-2" | "sh-port" | "mh-port" => SchedFlags::SCHED2,
            "flag-3" => SchedFlags::SCHED3,
            other => return Err(format!("{key}: no scheduler flag is named {other:?}")),
        };
    }
    let netmask = match (&s.netmask, key.family()) {
        (None, family) => PersistMask::host(family),
        (Some(m), Family::Inet) => PersistMask::V4(
            m.parse::<Ipv4Addr>()
                .map_err(|_| format!("{key}: netmask {m:?} is not a dotted IPv4 mask"))?,
        ),
        (Some(m), Family::Inet6) => PersistMask::V6(
            m.parse()
                .map_err(|_| format!("{key}: netmask {m:?} is not an IPv6 prefix length"))?,
        ),
    };
    let config = ServiceConfig {
        key,
        scheduler,
        sched_flags: SchedFlags(flags),
        persistence: s.persistent.map(|timeout| Persistence { timeout, netmask }),
        pe_name: s.pe.clone(),
        one_packet: s.ops,
        proxy_protocol: match s.proxy_protocol.as_deref() {
            None => None,
            Some("v1") => Some(rvs_core::ProxyProtocol::V1),
            Some("v2") => Some(rvs_core::ProxyProtocol::V2),
            Some(o) => return Err(format!("{key}: proxy_protocol {o:?} is not v1 or v2")),
        },
    };
    let dests: Vec<DestConfig> = s
        .reals
        .iter()
        .rev()
        .map(|d| dest(d, key).map_err(|e| format!("{key}: real server {}: {e}", d.addr)))
        .collect::<Result<_, _>>()?;
    let health = policy(s, key, &dests)?;
    Ok(ServiceEntry {
        config,
        dests,
        health,
    })
}

/// The service's health policy: its failure handling, fallback, quorum and checks.
fn policy(s: &FileService, key: ServiceKey, dests: &[DestConfig]) -> Result<HealthPolicy, String> {
    let on_failure = match s.on_failure.as_deref() {
        None | Some("quiesce") => OnFailure::Quiesce,
        Some("remove") => OnFailure::Remove,
        Some(o) => return Err(format!("{key}: on_failure {o:?} is not quiesce or remove")),
    };
    let start_up = match s.initial_state.as_deref() {
        None | Some("down") => false,
        Some("up") => true,
        Some(o) => return Err(format!("{key}: initial_state {o:?} is not down or up")),
    };
    let fallback = s
        .fallback
        .as_deref()
        .map(|f| addr(f, Some(key.port())).map_err(|e| format!("{key}: fallback: {e}")))
        .transpose()?;
    // Reals are listed in file order; `dests` is in kernel order (reversed).
    let mut dest_checks = std::collections::BTreeMap::new();
    for (d, config) in s.reals.iter().zip(dests.iter().rev()) {
        if let Some(check) = &d.check {
            dest_checks.insert(config.addr, check.clone());
        }
    }
    Ok(HealthPolicy {
        on_failure,
        fallback,
        quorum: s.quorum,
        hysteresis: s.hysteresis,
        check: s.check.clone(),
        dest_checks,
        start_up,
    })
}

fn dest(d: &FileDest, key: ServiceKey) -> Result<DestConfig, String> {
    let a = addr(&d.addr, Some(key.port()))?;
    let csum = match d.tun_csum.as_deref() {
        None | Some("nocsum") => TunnelCsum::NoCsum,
        Some("csum") => TunnelCsum::Csum,
        Some("remcsum") => TunnelCsum::RemCsum,
        Some(o) => return Err(format!("tun_csum {o:?} is not nocsum, csum or remcsum")),
    };
    let forward = match d.forward.as_deref().unwrap_or("route") {
        "masq" | "nat" => ForwardMethod::Masq,
        "route" | "dr" | "gate" => ForwardMethod::Route,
        "tunnel" | "tun" | "ipip" => ForwardMethod::Tunnel(Tunnel {
            kind: match d.tun_type.as_deref().unwrap_or("ipip") {
                "ipip" => TunnelKind::Ipip,
                "gue" => TunnelKind::Gue {
                    port: d.tun_port.unwrap_or(0),
                },
                "gre" => TunnelKind::Gre,
                o => return Err(format!("tun_type {o:?} is not ipip, gue or gre")),
            },
            csum,
        }),
        o => return Err(format!("forward {o:?} is not masq, route or tunnel")),
    };
    Ok(DestConfig {
        addr: a,
        forward,
        weight: d.weight.unwrap_or(1),
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_example_parses() {
        let c = parse(
            r#"
            [timeouts]
            tcp = 600
            [[service]]
            tcp = "198.18.0.1:80"
            scheduler = "wrr"
            persistent = 300
            netmask = "255.255.255.0"
            [[service.real]]
            addr = "198.18.1.1:8080"
            forward = "masq"
            weight = 3
            [[service.real]]
            addr = "198.18.1.2"
            [[service]]
            fwmark = 7
            ipv6 = true
            [[service.real]]
            addr = "[2001:db8::1]:0"
            forward = "tunnel"
            tun_type = "gue"
            tun_port = 6080
            "#,
        )
        .unwrap();
        assert_eq!(c.table.timeouts.tcp, 600);
        assert_eq!(c.table.services.len(), 2);
        let s = &c.table.services[0];
        assert_eq!(s.config.scheduler, rvs_core::SchedulerKind::Wrr);
        // The file lists real servers oldest first; kernel list order is newest first.
        assert_eq!(s.dests.len(), 2);
        assert_eq!(s.dests[1].addr, "198.18.1.1:8080".parse().unwrap());
        assert_eq!(
            s.dests[0].addr,
            "198.18.1.2:80".parse().unwrap(),
            "route dests take the service port"
        );
    }

    #[test]
    fn errors_name_the_service_and_the_key() {
        let e =
            parse("[[service]]\ntcp = \"198.18.0.1:80\"\nscheduler = \"fastest\"\n").unwrap_err();
        assert!(
            e.contains("TCP 198.18.0.1:80") && e.contains("fastest"),
            "{e}"
        );
        let e = parse("[[service]]\ntcp = \"198.18.0.1:80\"\nwieght = 3\n").unwrap_err();
        assert!(e.contains("wieght"), "{e}");
        let e = parse("[[service]]\ntcp = \"198.18.0.1:80\"\n[[service.real]]\naddr = \"198.18.1.1\"\nweight = 70000\n").unwrap_err();
        assert!(e.contains("70000"), "{e}");
    }
}
