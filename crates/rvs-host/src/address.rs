//! VIPs on an interface: added over netlink, removed again when the [`Vips`] holding them is
//! dropped. An address that was there before is someone else's and is left alone, both ways.

use crate::netlink::{Added, Netlink};
use crate::{host_error, HostError};
use std::net::IpAddr;

/// Addresses this process added to interfaces; dropping it removes them, newest first.
#[derive(Debug)]
pub struct Vips {
    netlink: Netlink,
    added: Vec<(u32, IpAddr, u8, String)>,
}

impl Vips {
    /// An empty set that adds through `netlink`.
    #[must_use]
    pub const fn new(netlink: Netlink) -> Self {
        Self {
            netlink,
            added: Vec::new(),
        }
    }

    /// Adds `ip/prefix` to interface `dev` (IPv6 without duplicate address detection: a VIP
    /// is on several hosts on purpose); returns whether it was added or there already.
    ///
    /// # Errors
    /// When there is no such interface or the kernel refuses the address.
    pub fn add(&mut self, dev: &str, ip: IpAddr, prefix: u8) -> Result<Added, HostError> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(host_error(
                format!("add {ip}/{prefix} to {dev}"),
                format!("the prefix length is at most {max}"),
            ));
        }
        let index = self.netlink.link_index(dev)?;
        let added = self
            .netlink
            .add_address(index, ip, prefix, true)
            .map_err(|e| host_error(format!("add {ip}/{prefix} to {dev}"), e.why))?;
        match added {
            Added::New => {
                tracing::info!(%ip, prefix, dev, "VIP added");
                self.added.push((index, ip, prefix, dev.to_owned()));
            }
            Added::Present => tracing::info!(%ip, dev, "VIP already there; left as it is"),
        }
        Ok(added)
    }

    /// Removes `ip` again if this set added it (on any interface); returns whether it did.
    ///
    /// # Errors
    /// When the kernel refuses the removal (the address stays in the set).
    pub fn remove(&mut self, ip: IpAddr) -> Result<bool, HostError> {
        let Some(at) = self.added.iter().position(|(_, a, _, _)| *a == ip) else {
            return Ok(false);
        };
        let (index, ip, prefix, dev) = &self.added[at];
        self.netlink
            .del_address(*index, *ip, *prefix)
            .map_err(|e| host_error(format!("remove {ip}/{prefix} from {dev}"), e.why))?;
        tracing::info!(%ip, dev = %dev, "VIP removed");
        self.added.remove(at);
        Ok(true)
    }

    /// The addresses this set added, oldest first.
    pub fn added(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.added.iter().map(|(_, ip, _, _)| *ip)
    }
}

impl Drop for Vips {
    fn drop(&mut self) {
        for (index, ip, prefix, dev) in self.added.drain(..).rev() {
            match self.netlink.del_address(index, ip, prefix) {
                Ok(()) => tracing::info!(%ip, dev, "VIP removed"),
                Err(e) => tracing::warn!(%ip, dev, error = %e, "could not remove a VIP"),
            }
        }
    }
}
