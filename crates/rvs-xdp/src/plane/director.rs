//! The director's own addresses, as the program's config needs them.

use super::failed;
use rvs_core::DataPlaneError;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The director's own addresses, written into the program's config.
#[derive(Debug, Clone, Copy)]
pub struct DirectorAddr {
    /// The outer source address of IPv4 tunnels.
    pub tunnel_src: Ipv4Addr,
    /// The outer source address of IPv6 tunnels, if the director has a global one.
    pub tunnel_src6: Option<Ipv6Addr>,
}

impl DirectorAddr {
    /// The first IPv4 address and first global IPv6 address of an interface.
    ///
    /// # Errors
    /// When the interface does not exist or has no IPv4 address.
    pub fn of_interface(interface: &str) -> Result<Self, DataPlaneError> {
        let addrs: Vec<_> = nix::ifaddrs::getifaddrs()
            .map_err(|e| failed("list interface addresses", e))?
            .filter(|a| a.interface_name == interface)
            .collect();
        let tunnel_src6 = addrs.iter().find_map(|a| {
            let ip = a.address?.as_sockaddr_in6()?.ip();
            // Not link-local (fe80::/10): a tunnel's outer source must be routable.
            (ip.segments()[0] & 0xffc0 != 0xfe80 && !ip.is_loopback()).then_some(ip)
        });
        let tunnel_src = addrs
            .iter()
            .find_map(|a| {
                a.address
                    .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
            })
            .ok_or_else(|| {
                failed(
                    format!("find an IPv4 address on {interface}"),
                    "none is configured",
                )
            })?;
        Ok(Self {
            tunnel_src,
            tunnel_src6,
        })
    }
}
