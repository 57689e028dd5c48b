//! The host's networking that several parts of rvs share, each in a module of its own:
//! - [`netlink`]: one rtnetlink connection, driven from synchronous code;
//! - [`address`]: VIPs added to and removed from an interface, undone on drop;
//! - [`announce`]: gratuitous ARP and unsolicited neighbour advertisements for a VIP that
//!   moved here (VRRP's takeover, a real server's new MAC);
//! - [`neighbors`]: neighbour lookups, next hops from the routing table, and managed entries
//!   the kernel keeps resolved (the xdp plane's resolver);
//! - [`sysctl`]: `/proc/sys` values set and put back on drop;
//! - [`decap`]: the tc program that strips tunnel headers on a real server;
//! - [`realserver`]: `rvsd realserver`, the seeds' real-server set-up made of the above.
//!
//! Used by `rvsd realserver`, the xdp plane and (next) VRRP.

#![deny(missing_docs)]

pub mod address;
pub mod announce;
pub mod decap;
pub mod neighbors;
pub mod netlink;
pub mod realserver;
pub mod sysctl;

/// Why something on the host could not be done: what was being done, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct HostError {
    /// What was being done.
    pub what: String,
    /// Why it failed.
    pub why: String,
}

/// A [`HostError`] from what was being done and why it failed.
pub fn host_error(what: impl Into<String>, why: impl std::fmt::Display) -> HostError {
    HostError {
        what: what.into(),
        why: why.to_string(),
    }
}
