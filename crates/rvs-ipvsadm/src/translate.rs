//! A parsed invocation as the table's [`Command`]: what libipvs would send the kernel.

use crate::opts::{optc, Cmd};
use crate::parse::{Invocation, AF_INET6, FWD_MASQ, FWD_TUNNEL, F_ONEPACKET, F_PERSISTENT};
use rvs_core::{
    Command, DestConfig, Family, ForwardMethod, PersistMask, Persistence, SchedFlags,
    SchedulerKind, ServiceConfig, ServiceKey, Timeouts, Tunnel, TunnelCsum, TunnelKind,
};
use std::net::{Ipv4Addr, SocketAddr};

/// The service an invocation names.
#[must_use]
pub fn service_key(inv: &Invocation) -> ServiceKey {
    let s = &inv.svc;
    if s.fwmark != 0 {
        let family = if s.af == AF_INET6 {
            Family::Inet6
        } else {
            Family::Inet
        };
        return ServiceKey::FwMark {
            mark: s.fwmark,
            family,
        };
    }
    let protocol = s.protocol.unwrap_or(rvs_core::Protocol::Tcp);
    ServiceKey::Inet {
        protocol,
        addr: SocketAddr::new(s.addr, s.port),
    }
}

/// The service configuration of `-A`/`-E`; `Err` carries an unknown scheduler's name.
fn service_config(inv: &Invocation) -> Result<ServiceConfig, String> {
    let s = &inv.svc;
    let key = service_key(inv);
    let scheduler: SchedulerKind = s.sched_name.parse().map_err(|_| s.sched_name.clone())?;
    let persistence = (s.flags & F_PERSISTENT != 0).then(|| Persistence {
        timeout: s.timeout,
        netmask: if key.family() == Family::Inet6 {
            PersistMask::V6(u8::try_from(s.netmask).unwrap_or(128))
        } else {
            PersistMask::V4(Ipv4Addr::from(s.netmask.to_ne_bytes()))
        },
    });
    Ok(ServiceConfig {
        key,
        scheduler,
        sched_flags: SchedFlags(s.flags & SchedFlags::MASK),
        persistence,
        pe_name: (!s.pe_name.is_empty()).then(|| s.pe_name.clone()),
        one_packet: s.flags & F_ONEPACKET != 0,
        proxy_protocol: s.proxy_protocol,
    })
}

/// The dest configuration of `-a`/`-e`.
#[must_use]
pub fn dest_config(inv: &Invocation) -> DestConfig {
    let d = &inv.dest;
    let forward = match d.conn_flags {
        FWD_MASQ => ForwardMethod::Masq,
        FWD_TUNNEL => ForwardMethod::Tunnel(Tunnel {
            kind: match d.tun_type {
                1 => TunnelKind::Gue { port: d.tun_port },
                2 => TunnelKind::Gre,
                _ => TunnelKind::Ipip,
            },
            csum: match d.tun_flags {
                1 => TunnelCsum::Csum,
                2 => TunnelCsum::RemCsum,
                _ => TunnelCsum::NoCsum,
            },
        }),
        _ => ForwardMethod::Route,
    };
    DestConfig {
        addr: SocketAddr::new(d.addr, d.port),
        forward,
        weight: u32::try_from(d.weight).unwrap_or(0),
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    }
}

/// The core command an invocation of a table-changing command makes.
///
/// # Errors
/// The name of an unknown scheduler (`-A`/`-E`).
pub fn to_command(inv: &Invocation) -> Result<Option<Command>, String> {
    let service = service_key(inv);
    Ok(Some(match inv.cmd {
        Cmd::Add => Command::AddService(service_config(inv)?),
        Cmd::Edit => Command::EditService(service_config(inv)?),
        Cmd::Del => Command::DelService { service },
        Cmd::AddDest => Command::AddDest {
            service,
            dest: dest_config(inv),
        },
        Cmd::EditDest => Command::EditDest {
            service,
            dest: dest_config(inv),
        },
        Cmd::DelDest => Command::DelDest {
            service,
            dest: SocketAddr::new(inv.dest.addr, inv.dest.port),
        },
        Cmd::Flush => Command::Clear,
        // libipvs sends no service for the zero address and port (`-Z -t 0.0.0.0:0`), and
        // the kernel then zeroes every service.
        Cmd::Zero => Command::Zero {
            service: inv
                .options
                .has(optc::SERVICE)
                .then_some(service)
                .filter(|k| !zero_address(k)),
        },
        Cmd::Timeout => {
            let [tcp, tcp_fin, udp] = inv.timeouts;
            Command::SetTimeouts(Timeouts { tcp, tcp_fin, udp })
        }
        _ => return Ok(None),
    }))
}

/// Whether a service key is the zero address and port (`0.0.0.0:0`, `[::]:0`).
fn zero_address(key: &ServiceKey) -> bool {
    matches!(key, ServiceKey::Inet { addr, .. } if addr.ip().is_unspecified() && addr.port() == 0)
}
