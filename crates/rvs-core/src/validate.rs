//! The rules the kernel and ipvsadm apply to a service or dest, before anything changes.
//!
//! Each function checks one configuration on its own and returns it normalised (for example, a
//! direct-routing dest takes the service's port, as ipvsadm forces). Rules that need the rest of
//! the table (existence, duplicates) live in [`crate::table`].

use crate::config::{
    DestConfig, ForwardMethod, PersistMask, SchedFlags, SchedulerKind, ServiceConfig, Timeouts,
    TunnelCsum, TunnelKind, MAX_THRESHOLD, MAX_TIMEOUT, MAX_WEIGHT, PERSISTENCE_ENGINES,
};
use crate::error::TableError;
use crate::key::ServiceKey;
use crate::protocol::{Family, Protocol};
use std::net::{IpAddr, SocketAddr};

/// Checks a service configuration.
///
/// # Errors
/// The first rule the configuration breaks.
pub fn service(config: &ServiceConfig) -> Result<(), TableError> {
    let service = config.key;
    match service {
        ServiceKey::FwMark { mark: 0, .. } => return Err(TableError::ZeroFwMark),
        ServiceKey::Inet { addr, .. } if addr.port() == 0 && config.persistence.is_none() => {
            return Err(TableError::ZeroPortNotPersistent { service });
        }
        _ => {}
    }
    if let Some(p) = config.persistence {
        if p.timeout == 0 || p.timeout > MAX_TIMEOUT {
            return Err(TableError::PersistenceTimeoutOutOfRange {
                service,
                timeout: p.timeout,
            });
        }
        let fits = match (p.netmask, service.family()) {
            (PersistMask::V4(_), Family::Inet) => true,
            (PersistMask::V6(prefix), Family::Inet6) => (1..=128).contains(&prefix),
            _ => false,
        };
        if !fits {
            return Err(TableError::PersistenceMaskInvalid {
                service,
                netmask: format!("{:?}", p.netmask),
            });
        }
    }
    if let Some(name) = &config.pe_name {
        if !PERSISTENCE_ENGINES.contains(&name.as_str()) {
            return Err(TableError::PersistenceEngineNotFound {
                service,
                name: name.clone(),
            });
        }
    }
    if config.proxy_protocol.is_some() && service.protocol() != Some(Protocol::Tcp) {
        return Err(TableError::ProxyProtocolNotTcp { service });
    }
    if config.one_packet && !matches!(service.protocol(), None | Some(Protocol::Udp)) {
        return Err(TableError::OnePacketNotUdp { service });
    }
    sched_flags(service, config.scheduler, config.sched_flags)
}

/// Scheduler flags: any of the three bits; the named sh/mh flags are checked by ipvsadm's parser.
fn sched_flags(
    service: ServiceKey,
    scheduler: SchedulerKind,
    flags: SchedFlags,
) -> Result<(), TableError> {
    if flags.0 & !SchedFlags::MASK != 0 {
        return Err(TableError::SchedFlagsInvalid {
            service,
            flags: flags.0,
            scheduler,
        });
    }
    Ok(())
}

/// Checks a dest against its service and returns it normalised: direct-routing and tunnel dests
/// of an address service take the service's port, as ipvsadm forces.
///
/// # Errors
/// The first rule the dest breaks.
pub fn dest(service: &ServiceConfig, dest: DestConfig) -> Result<DestConfig, TableError> {
    let addr = dest.addr;
    if dest.weight > MAX_WEIGHT {
        return Err(TableError::WeightOutOfRange {
            dest: addr,
            weight: dest.weight,
        });
    }
    for threshold in [dest.u_threshold, dest.l_threshold] {
        if threshold > MAX_THRESHOLD {
            return Err(TableError::ThresholdOutOfRange {
                dest: addr,
                threshold,
            });
        }
    }
    if dest.l_threshold > dest.u_threshold {
        return Err(TableError::ThresholdOrder {
            dest: addr,
            upper: dest.u_threshold,
            lower: dest.l_threshold,
        });
    }
    if !is_unicast(&addr.ip()) {
        return Err(TableError::DestNotUnicast { dest: addr });
    }
    let tunnelled = matches!(dest.forward, ForwardMethod::Tunnel(_));
    if Family::of(&addr.ip()) != service.key.family() && !tunnelled {
        return Err(TableError::MixedFamily {
            service: service.key,
            dest: addr,
        });
    }
    if let ForwardMethod::Tunnel(t) = dest.forward {
        let problem = match (t.kind, t.csum) {
            (TunnelKind::Gue { port: 0 }, _) => Some("a GUE tunnel needs a port (1..=65535)"),
            (TunnelKind::Ipip, TunnelCsum::NoCsum) | (TunnelKind::Gue { .. }, _) => None,
            (TunnelKind::Ipip, _) => Some("an IPIP tunnel takes no checksum option"),
            (TunnelKind::Gre, TunnelCsum::RemCsum) => {
                Some("a GRE tunnel takes no remote checksum offload")
            }
            (TunnelKind::Gre, _) => None,
        };
        if let Some(problem) = problem {
            return Err(TableError::TunnelInvalid {
                dest: addr,
                problem: problem.to_owned(),
            });
        }
    }
    let mut dest = dest;
    if let ServiceKey::Inet { addr: vaddr, .. } = service.key {
        if !matches!(dest.forward, ForwardMethod::Masq) {
            dest.addr = SocketAddr::new(dest.addr.ip(), vaddr.port());
        }
    }
    Ok(dest)
}

/// Whether the kernel would take this address as a real server (`RTN_UNICAST` or `RTN_LOCAL`).
/// Whether the kernel takes `ip` as a real server (`ip_vs_new_dest`): IPv4 that
/// `inet_addr_type` calls unicast or local, so not 0.0.0.0/8, multicast or the limited
/// broadcast (a local subnet's broadcast address depends on the host and is not known here);
/// IPv6 that `ipv6_addr_type` calls unicast and not link-local (the loopback, which is local,
/// included).
fn is_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.octets()[0] == 0 || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => {
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            !(v6.is_unspecified() || v6.is_multicast() || link_local)
        }
    }
}

/// Checks `--set` values: each 0..=2678400, where 0 keeps the current value.
///
/// # Errors
/// [`TableError::TimeoutOutOfRange`] naming the first timeout out of range.
pub fn timeouts(t: &Timeouts) -> Result<(), TableError> {
    for (name, value) in [("tcp", t.tcp), ("tcpfin", t.tcp_fin), ("udp", t.udp)] {
        if value > MAX_TIMEOUT {
            return Err(TableError::TimeoutOutOfRange {
                name: name.to_owned(),
                value,
            });
        }
    }
    Ok(())
}

/// Checks a health policy against its service: the fallback server of the service's family,
/// with a port (masquerading to port 0 reaches nothing), unicast; a hysteresis only with a
/// quorum, and no wider than it.
///
/// # Errors
/// [`TableError::HealthPolicyInvalid`] naming the setting.
pub fn health_policy(
    service: &ServiceConfig,
    policy: &crate::health::HealthPolicy,
) -> Result<(), TableError> {
    let invalid = |problem: String| TableError::HealthPolicyInvalid {
        service: service.key,
        problem,
    };
    if let Some(fallback) = policy.fallback {
        let family = if fallback.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        };
        if family != service.key.family() {
            return Err(invalid(format!(
                "fallback {fallback} is not of the service's address family"
            )));
        }
        if fallback.port() == 0 && service.key.port() != 0 {
            return Err(invalid(format!("fallback {fallback} needs a port")));
        }
        if !is_unicast(&fallback.ip()) {
            return Err(invalid(format!(
                "fallback {fallback} is not a unicast address"
            )));
        }
    }
    if let Some(check) = &policy.check {
        crate::check::validate(check).map_err(|e| invalid(format!("check: {e}")))?;
    }
    for (addr, check) in &policy.dest_checks {
        crate::check::validate(check)
            .map_err(|e| invalid(format!("check of real server {addr}: {e}")))?;
    }
    if policy.hysteresis > 0 && policy.hysteresis > policy.quorum {
        return Err(invalid(format!(
            "hysteresis {} is wider than quorum {}",
            policy.hysteresis, policy.quorum
        )));
    }
    Ok(())
}
