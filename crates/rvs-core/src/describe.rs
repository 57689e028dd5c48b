//! Changes as a person reads them, for the audit log: `added real server 10.0.0.2:80 to TCP
//! 192.0.2.10:80, masq, weight 1`.

use crate::command::Change;
use crate::config::{DestConfig, ForwardMethod, PersistMask, ServiceConfig, TunnelKind};
use crate::health::{Health, HealthPolicy, OnFailure};
use std::fmt;

/// A service's settings: `scheduler wrr`, then the options that are set.
struct Settings<'a>(&'a ServiceConfig);

impl fmt::Display for Settings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(f, "scheduler {}", c.scheduler)?;
        if c.sched_flags.0 != 0 {
            write!(f, ", flags {:#x}", c.sched_flags.0)?;
        }
        if let Some(p) = c.persistence {
            write!(f, ", persistent {} s", p.timeout)?;
            match p.netmask {
                PersistMask::V4(m) if m != std::net::Ipv4Addr::BROADCAST => {
                    write!(f, " per {m}")?;
                }
                PersistMask::V6(n) if n != 128 => write!(f, " per /{n}")?,
                _ => {}
            }
        }
        if let Some(pe) = &c.pe_name {
            write!(f, ", engine {pe}")?;
        }
        if c.one_packet {
            f.write_str(", one-packet")?;
        }
        if let Some(v) = c.proxy_protocol {
            write!(f, ", PROXY protocol {v:?}")?;
        }
        Ok(())
    }
}

/// A dest's settings: `masq, weight 1`, then thresholds and tunnel options.
struct DestSettings<'a>(&'a DestConfig);

impl fmt::Display for DestSettings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        match d.forward {
            ForwardMethod::Masq => f.write_str("masq")?,
            ForwardMethod::Route => f.write_str("direct routing")?,
            ForwardMethod::Tunnel(t) => match t.kind {
                TunnelKind::Ipip => f.write_str("IP-in-IP tunnel")?,
                TunnelKind::Gue { port } => write!(f, "GUE tunnel to port {port}")?,
                TunnelKind::Gre => f.write_str("GRE tunnel")?,
            },
        }
        write!(f, ", weight {}", d.weight)?;
        if d.u_threshold != 0 {
            write!(f, ", upper threshold {}", d.u_threshold)?;
        }
        if d.l_threshold != 0 {
            write!(f, ", lower threshold {}", d.l_threshold)?;
        }
        Ok(())
    }
}

/// A health policy in words.
struct Policy<'a>(&'a HealthPolicy);

impl fmt::Display for Policy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        f.write_str(match p.on_failure {
            OnFailure::Quiesce => "quiesce on failure",
            OnFailure::Remove => "remove on failure",
        })?;
        if let Some(fallback) = p.fallback {
            write!(f, ", fallback {fallback}")?;
        }
        if p.quorum != 0 {
            write!(f, ", quorum {} (hysteresis {})", p.quorum, p.hysteresis)?;
        }
        if let Some(c) = &p.check {
            write!(f, ", {} check every {} s", c.kind, c.interval)?;
        }
        if !p.dest_checks.is_empty() {
            write!(
                f,
                ", {} real server(s) with checks of their own",
                p.dest_checks.len()
            )?;
        }
        if p.start_up {
            f.write_str(", checked real servers start up")?;
        }
        Ok(())
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceAdded(c) => write!(f, "added service {}, {}", c.key, Settings(c)),
            Self::ServiceEdited(c) => write!(f, "edited service {}: {}", c.key, Settings(c)),
            Self::ServiceRemoved { service } => write!(f, "removed service {service}"),
            Self::DestAdded { service, dest } => write!(
                f,
                "added real server {} to {service}, {}",
                dest.addr,
                DestSettings(dest)
            ),
            Self::DestEdited { service, dest } => write!(
                f,
                "edited real server {} of {service}: {}",
                dest.addr,
                DestSettings(dest)
            ),
            Self::DestRemoved { service, dest } => {
                write!(f, "removed real server {dest} from {service}")
            }
            Self::Zeroed { service: Some(s) } => write!(f, "zeroed the counters of {s}"),
            Self::Zeroed { service: None } => f.write_str("zeroed every service's counters"),
            Self::TimeoutsSet(t) => write!(
                f,
                "set timeouts: tcp {} s, tcpfin {} s, udp {} s",
                t.tcp, t.tcp_fin, t.udp
            ),
            Self::HealthPolicySet { service, policy } => {
                write!(f, "set the health policy of {service}: {}", Policy(policy))
            }
            Self::HealthSet {
                service,
                dest,
                health,
            } => {
                let word = match health {
                    Health::Up => "up",
                    Health::Down => "down",
                    Health::Unchecked => "no longer checked",
                };
                write!(f, "real server {dest} of {service} is {word}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::command::Change;
    use crate::config::{DestConfig, ForwardMethod, Persistence, SchedulerKind, ServiceConfig};
    use crate::key::ServiceKey;

    #[test]
    fn changes_read_as_sentences() {
        let key = ServiceKey::tcp("192.0.2.10:80".parse().unwrap());
        let dest = DestConfig::new("10.0.0.2:80".parse().unwrap(), ForwardMethod::Masq);
        assert_eq!(
            Change::DestAdded { service: key, dest }.to_string(),
            "added real server 10.0.0.2:80 to TCP 192.0.2.10:80, masq, weight 1"
        );
        let mut svc = ServiceConfig::new(key).with_scheduler(SchedulerKind::Wrr);
        svc.persistence = Some(Persistence {
            timeout: 300,
            netmask: crate::config::PersistMask::V4("255.255.255.0".parse().unwrap()),
        });
        assert_eq!(
            Change::ServiceAdded(svc).to_string(),
            "added service TCP 192.0.2.10:80, scheduler wrr, persistent 300 s per 255.255.255.0"
        );
        assert_eq!(
            Change::DestRemoved {
                service: key,
                dest: "10.0.0.2:80".parse().unwrap()
            }
            .to_string(),
            "removed real server 10.0.0.2:80 from TCP 192.0.2.10:80"
        );
    }
}
