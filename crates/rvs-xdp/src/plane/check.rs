//! What the program can and cannot carry: a batch it would refuse is refused before any change
//! is applied, with the reason and what to use instead.

use super::{unsupported, XdpPlane};
use crate::ring;
use rvs_core::{Change, DataPlaneError, ForwardMethod, Protocol, ServiceKey, Tunnel, TunnelCsum};
use std::collections::HashMap;

impl XdpPlane {
    /// Whether the program can forward to a real server the way `dest` asks.
    fn check_dest(
        &self,
        service: &ServiceKey,
        dest: &rvs_core::DestConfig,
    ) -> Result<(), DataPlaneError> {
        let ServiceKey::Inet {
            protocol,
            addr: vip,
        } = service
        else {
            return Ok(()); // fwmark services are refused on their own
        };
        if vip.is_ipv4() != dest.addr.is_ipv4() {
            return Err(unsupported(
                format!(
                    "forward service {service} to real server {} of the other address family",
                    dest.addr
                ),
                "a real server of the service's family",
            ));
        }
        match dest.forward {
            ForwardMethod::Tunnel(Tunnel {
                csum: TunnelCsum::RemCsum,
                ..
            }) => Err(unsupported(
                format!(
                    "tunnel to real server {} with remote checksum offload (--tun-remcsum) yet",
                    dest.addr
                ),
                "--tun-csum or --tun-nocsum",
            )),
            ForwardMethod::Tunnel(_) if dest.addr.is_ipv6() && self.writer.config.tunnel_src6 == [0; 4] => {
                Err(unsupported(
                    format!(
                        "tunnel to real server {} without a global IPv6 address on the director's interface",
                        dest.addr
                    ),
                    "add one to the first --interface",
                ))
            }
            ForwardMethod::Masq if *protocol == Protocol::Sctp && dest.addr.port() != vip.port() => {
                Err(unsupported(
                    format!(
                        "masquerade SCTP service {service} to real server {} on another port (SCTP's CRC32c covers the port)",
                        dest.addr
                    ),
                    "the service's own port on the real server",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a batch the program cannot carry, naming the first change it cannot.
    pub(super) fn check_changes(&self, changes: &[Change]) -> Result<(), DataPlaneError> {
        // Dests each service would hold: a ring (and a scan) covers at most RING_SIZE.
        let mut added: HashMap<ServiceKey, usize> = HashMap::new();
        for c in changes {
            if let Change::DestAdded { service, .. } = c {
                let n = added.entry(*service).or_insert_with(|| {
                    self.writer
                        .table
                        .service(service)
                        .map_or(0, |s| s.dests().len())
                });
                *n += 1;
                if *n > ring::SIZE {
                    return Err(unsupported(
                        format!(
                            "give service {service} more than {} real servers",
                            ring::SIZE
                        ),
                        "another virtual service, or --dataplane proxy",
                    ));
                }
            }
        }
        for c in changes {
            match c {
                Change::ServiceAdded(s) | Change::ServiceEdited(s) => match s.key {
                    ServiceKey::Inet { addr, .. } if addr.port() != 0 => {}
                    ServiceKey::FwMark { mark, .. } => {
                        return Err(unsupported(
                            format!("serve firewall-mark service FWM {mark} yet"),
                            "an address service",
                        ))
                    }
                    other => {
                        return Err(unsupported(
                            format!("serve {other} on every port (port 0)"),
                            "a service on one port, or --dataplane proxy",
                        ))
                    }
                },
                Change::DestAdded { service, dest } | Change::DestEdited { service, dest } => {
                    self.check_dest(service, dest)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
