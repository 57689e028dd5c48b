//! Neighbours: what the kernel's neighbour tables say, the next hop the routing table gives
//! for an address, and the changes that keep a next hop resolved (managed entries, fresh
//! resolutions). All over netlink; entries are named by interface *name*, as an operator reads
//! them in `ip neigh`.

use crate::netlink::{NeighbourEntry, Netlink};
use crate::{host_error, HostError};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

/// Resolves addresses to MAC addresses; a trait so tests can supply their own.
pub trait Neighbors: Send {
    /// The MAC address of `ip` on the local link, if known.
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]>;
}

/// A neighbour entry's identity: the address on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    /// The next hop's address.
    pub addr: IpAddr,
    /// The interface it is reached by.
    pub dev: String,
}

/// What the kernel's neighbour table says of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Neighbour {
    /// The link-layer address, when the entry has one.
    pub lladdr: Option<[u8; 6]>,
    /// The NUD states (`REACHABLE`, `STALE`, `FAILED`, ...).
    pub states: Vec<String>,
    /// Whether it is a managed entry.
    pub managed: bool,
}

impl Neighbour {
    /// Whether the kernel would use its MAC (the FIB helper's `NUD_VALID`).
    #[must_use]
    pub fn usable(&self) -> bool {
        self.lladdr.is_some()
            && self.states.iter().any(|s| {
                matches!(
                    s.as_str(),
                    "REACHABLE" | "STALE" | "DELAY" | "PROBE" | "PERMANENT" | "NOARP"
                )
            })
    }

    /// Whether it is fixed by hand (the kernel never probes it, and neither does rvs).
    #[must_use]
    pub fn fixed(&self) -> bool {
        self.states.iter().any(|s| s == "PERMANENT" || s == "NOARP")
    }
}

/// A change to the neighbour table; shown as the `ip neigh` command that does the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighOp {
    /// Adds a managed entry (the kernel resolves it at once, and keeps it resolved).
    AddManaged(NeighKey),
    /// Turns an existing (failed, incomplete) entry into a managed one.
    ReplaceManaged(NeighKey),
    /// Deletes an entry.
    Delete(NeighKey),
}

impl fmt::Display for NeighOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddManaged(k) => write!(f, "neigh add {} dev {} managed", k.addr, k.dev),
            Self::ReplaceManaged(k) => {
                write!(f, "neigh replace {} dev {} nud none managed", k.addr, k.dev)
            }
            Self::Delete(k) => write!(f, "neigh del {} dev {}", k.addr, k.dev),
        }
    }
}

/// The kernel's neighbour and routing tables, read and changed over netlink.
#[derive(Debug, Clone)]
pub struct KernelNeighbors {
    netlink: Netlink,
}

impl KernelNeighbors {
    /// Opens a netlink connection in the calling thread's network namespace.
    ///
    /// # Errors
    /// When the netlink socket cannot be made.
    pub fn open() -> Result<Self, HostError> {
        Ok(Self {
            netlink: Netlink::open()?,
        })
    }

    /// Works through `netlink`.
    #[must_use]
    pub const fn with(netlink: Netlink) -> Self {
        Self { netlink }
    }

    fn names(&self) -> Result<BTreeMap<u32, String>, HostError> {
        self.netlink.links()
    }

    /// Both families' neighbour tables, by address and interface name.
    ///
    /// # Errors
    /// When the kernel refuses a dump.
    pub fn table(&self) -> Result<HashMap<NeighKey, Neighbour>, HostError> {
        let names = self.names()?;
        Ok(self
            .netlink
            .neighbours()?
            .into_iter()
            .filter_map(|e: NeighbourEntry| {
                let dev = names.get(&e.ifindex)?.clone();
                let n = Neighbour {
                    lladdr: e.lladdr,
                    states: vec![e.state.to_owned()],
                    managed: e.managed,
                };
                Some((NeighKey { addr: e.addr, dev }, n))
            })
            .collect())
    }

    /// The next hop towards each address (the gateway of its route, else the address
    /// itself) and the interface it is reached by; addresses without a route are left out.
    ///
    /// # Errors
    /// When the interfaces cannot be listed.
    pub fn next_hops(
        &self,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Result<HashMap<IpAddr, NeighKey>, HostError> {
        let names = self.names()?;
        let mut hops = HashMap::new();
        for addr in addrs {
            match self.netlink.route_to(addr) {
                Ok(route) => {
                    if let Some(dev) = names.get(&route.oif) {
                        let hop = route.gateway.unwrap_or(addr);
                        hops.insert(
                            addr,
                            NeighKey {
                                addr: hop,
                                dev: dev.clone(),
                            },
                        );
                    }
                }
                Err(e) => tracing::debug!(%addr, error = %e, "no route"),
            }
        }
        Ok(hops)
    }

    /// Makes the changes, in order; all are tried, the first failure is returned.
    ///
    /// # Errors
    /// The first change the kernel refused (or whose interface is gone).
    pub fn apply(&self, ops: &[NeighOp]) -> Result<(), HostError> {
        if ops.is_empty() {
            return Ok(());
        }
        let names = self.names()?;
        let index = |dev: &str| {
            names
                .iter()
                .find_map(|(i, n)| (n == dev).then_some(*i))
                .ok_or_else(|| host_error(format!("find interface {dev}"), "no such interface"))
        };
        let mut first = None;
        for op in ops {
            let done =
                match op {
                    NeighOp::AddManaged(k) => index(&k.dev)
                        .and_then(|i| self.netlink.add_managed_neighbour(i, k.addr, false)),
                    NeighOp::ReplaceManaged(k) => index(&k.dev)
                        .and_then(|i| self.netlink.add_managed_neighbour(i, k.addr, true)),
                    NeighOp::Delete(k) => {
                        index(&k.dev).and_then(|i| self.netlink.del_neighbour(i, k.addr))
                    }
                };
            if let Err(e) = done {
                first.get_or_insert(host_error(format!("{op}"), e));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Neighbors for KernelNeighbors {
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.netlink
            .neighbours()
            .ok()?
            .into_iter()
            .find(|e| {
                e.addr == ip && e.lladdr.is_some() && !matches!(e.state, "INCOMPLETE" | "FAILED")
            })
            .and_then(|e| e.lladdr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str, dev: &str) -> NeighKey {
        NeighKey {
            addr: a.parse().unwrap(),
            dev: dev.to_owned(),
        }
    }

    #[test]
    fn each_change_reads_as_the_ip_command_that_does_it() {
        assert_eq!(
            NeighOp::AddManaged(key("198.18.1.2", "eth1")).to_string(),
            "neigh add 198.18.1.2 dev eth1 managed"
        );
        assert_eq!(
            NeighOp::ReplaceManaged(key("2001:db8::1", "eth0")).to_string(),
            "neigh replace 2001:db8::1 dev eth0 nud none managed"
        );
        assert_eq!(
            NeighOp::Delete(key("198.18.1.2", "eth1")).to_string(),
            "neigh del 198.18.1.2 dev eth1"
        );
    }

    #[test]
    fn usable_and_fixed_entries_are_told_apart() {
        let n = |mac: Option<[u8; 6]>, s: &str| Neighbour {
            lladdr: mac,
            states: vec![s.to_owned()],
            managed: false,
        };
        assert!(n(Some([2; 6]), "STALE").usable());
        assert!(!n(None, "FAILED").usable());
        assert!(!n(Some([2; 6]), "INCOMPLETE").usable());
        assert!(n(Some([2; 6]), "PERMANENT").fixed());
        assert!(!n(Some([2; 6]), "REACHABLE").fixed());
    }
}
