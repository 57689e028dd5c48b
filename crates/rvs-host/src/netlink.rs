//! One rtnetlink connection, driven from synchronous code.
//!
//! The rtnetlink crate is async: its connection is a future that owns the socket, and each
//! request answers through a channel. Here the connection runs on a thread of its own (a
//! current-thread tokio runtime, created in the caller's network namespace, which the thread
//! inherits) and requests are awaited with `futures`' executor, which needs no runtime: so the
//! calls work from plain threads and from inside rvsd's tokio workers alike. The thread ends
//! when the last [`Netlink`] clone is dropped.

use crate::{host_error, HostError};
use futures::executor::block_on;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `EEXIST`, as netlink reports it (negated).
const EEXIST: i32 = -libc::EEXIST;
/// `ENOENT`/`ESRCH`/`EADDRNOTAVAIL`: what the kernel says when the thing to delete is gone.
const GONE: [i32; 3] = [-libc::ENOENT, -libc::ESRCH, -libc::EADDRNOTAVAIL];

/// A handle on the kernel's routing netlink; cheap to clone.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

/// Whether an address was added or was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Added now.
    New,
    /// It was there already (someone else's; left alone).
    Present,
}

/// A neighbour table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourEntry {
    /// The interface's index.
    pub ifindex: u32,
    /// The neighbour's address.
    pub addr: IpAddr,
    /// Its link-layer address, when the entry has one.
    pub lladdr: Option<[u8; 6]>,
    /// Its NUD state, by iproute2's name (`REACHABLE`, `STALE`, `FAILED`, ...).
    pub state: &'static str,
    /// Whether the kernel keeps it resolved by itself (`NTF_EXT_MANAGED`).
    pub managed: bool,
}

/// The route the kernel would use towards an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The egress interface's index.
    pub oif: u32,
    /// The gateway, when the route has one.
    pub gateway: Option<IpAddr>,
}

fn code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(std::num::NonZeroI32::get),
        _ => None,
    }
}

const fn state_name(state: NeighbourState) -> &'static str {
    match state {
        NeighbourState::Incomplete => "INCOMPLETE",
        NeighbourState::Reachable => "REACHABLE",
        NeighbourState::Stale => "STALE",
        NeighbourState::Delay => "DELAY",
        NeighbourState::Probe => "PROBE",
        NeighbourState::Failed => "FAILED",
        NeighbourState::Noarp => "NOARP",
        NeighbourState::Permanent => "PERMANENT",
        _ => "NONE",
    }
}

const fn prefix_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace.
    ///
    /// # Errors
    /// When the netlink socket or its thread cannot be made.
    pub fn open() -> Result<Self, HostError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("rvs-netlink".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match rtnetlink::new_connection() {
                        Ok((connection, handle, _)) => {
                            let _ = tx.send(Ok(handle));
                            connection.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                });
            })
            .map_err(|e| host_error("start the netlink thread", e))?;
        let handle = rx
            .recv()
            .map_err(|e| host_error("open a netlink socket", e))?
            .map_err(|e| host_error("open a netlink socket", e))?;
        Ok(Self { handle })
    }

    /// Every interface: index to name.
    ///
    /// # Errors
    /// When the kernel refuses the dump.
    pub fn links(&self) -> Result<BTreeMap<u32, String>, HostError> {
        block_on(async {
            let mut links = self.handle.link().get().execute();
            let mut out = BTreeMap::new();
            while let Some(link) = links.try_next().await? {
                let name = link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                if let Some(name) = name {
                    out.insert(link.header.index, name);
                }
            }
            Ok::<_, rtnetlink::Error>(out)
        })
        .map_err(|e| host_error("list the interfaces", e))
    }

    /// The index of interface `name`.
    ///
    /// # Errors
    /// When there is no such interface.
    pub fn link_index(&self, name: &str) -> Result<u32, HostError> {
        self.links()?
            .into_iter()
            .find_map(|(index, n)| (n == name).then_some(index))
            .ok_or_else(|| host_error(format!("find interface {name}"), "no such interface"))
    }

    /// The hardware (MAC) address of interface `index`.
    ///
    /// # Errors
    /// When there is no such interface or it has no Ethernet address.
    pub fn link_mac(&self, index: u32) -> Result<[u8; 6], HostError> {
        let what = || format!("find the MAC address of interface {index}");
        let link = block_on(async {
            let mut answer = self.handle.link().get().match_index(index).execute();
            answer.try_next().await
        })
        .map_err(|e| host_error(what(), e))?
        .ok_or_else(|| host_error(what(), "no such interface"))?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| host_error(what(), "it has no Ethernet address"))
    }

    /// The addresses on interface `index`, with their prefix lengths.
    ///
    /// # Errors
    /// When the kernel refuses the dump.
    pub fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, HostError> {
        block_on(async {
            let mut dump = self
                .handle
                .address()
                .get()
                .set_link_index_filter(index)
                .execute();
            let mut out = Vec::new();
            while let Some(m) = dump.try_next().await? {
                if m.header.index != index {
                    continue;
                }
                for a in &m.attributes {
                    if let AddressAttribute::Address(ip) = a {
                        out.push((*ip, m.header.prefix_len));
                    }
                }
            }
            Ok::<_, rtnetlink::Error>(out)
        })
        .map_err(|e| host_error("list the addresses", e))
    }

    /// Adds `ip/prefix` to interface `index`; IPv6 addresses skip duplicate address detection
    /// when `nodad` (the VIP exists elsewhere on purpose, and DAD would leave it tentative).
    ///
    /// # Errors
    /// When the kernel refuses it for another reason than that it is there already.
    pub fn add_address(
        &self,
        index: u32,
        ip: IpAddr,
        prefix: u8,
        nodad: bool,
    ) -> Result<Added, HostError> {
        let mut request = self.handle.address().add(index, ip, prefix);
        if nodad && ip.is_ipv6() {
            let m = request.message_mut();
            m.header.flags |= AddressHeaderFlags::Nodad;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match block_on(request.execute()) {
            Ok(()) => Ok(Added::New),
            Err(e) if code(&e) == Some(EEXIST) => Ok(Added::Present),
            Err(e) => Err(host_error(format!("add {ip}/{prefix}"), e)),
        }
    }

    /// Removes `ip` from interface `index`; an address already gone is not an error.
    ///
    /// # Errors
    /// When the kernel refuses it.
    pub fn del_address(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<(), HostError> {
        let mut message = rtnetlink::packet_route::address::AddressMessage::default();
        message.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        message.header.index = index;
        message.header.prefix_len = prefix;
        message.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv4() {
            message.attributes.push(AddressAttribute::Local(ip));
        }
        match block_on(self.handle.address().del(message).execute()) {
            Ok(()) => Ok(()),
            Err(e) if code(&e).is_some_and(|c| GONE.contains(&c)) => Ok(()),
            Err(e) => Err(host_error(format!("remove {ip}/{prefix}"), e)),
        }
    }

    /// The neighbour tables of both families.
    ///
    /// # Errors
    /// When the kernel refuses the dump.
    pub fn neighbours(&self) -> Result<Vec<NeighbourEntry>, HostError> {
        block_on(async {
            let mut dump = self.handle.neighbours().get().execute();
            let mut out = Vec::new();
            while let Some(m) = dump.try_next().await? {
                let mut addr = None;
                let mut lladdr = None;
                let mut managed = false;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                            addr = Some(IpAddr::V4(*v4));
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                            addr = Some(IpAddr::V6(*v6));
                        }
                        NeighbourAttribute::LinkLayerAddress(l) => {
                            lladdr = <[u8; 6]>::try_from(l.as_slice())
                                .ok()
                                .filter(|mac| *mac != [0; 6]);
                        }
                        NeighbourAttribute::ExtFlags(f) => {
                            managed = f.contains(NeighbourExtFlags::Managed);
                        }
                        _ => {}
                    }
                }
                if let Some(addr) = addr {
                    out.push(NeighbourEntry {
                        ifindex: m.header.ifindex,
                        addr,
                        lladdr,
                        state: state_name(m.header.state),
                        managed,
                    });
                }
            }
            Ok::<_, rtnetlink::Error>(out)
        })
        .map_err(|e| host_error("list the neighbours", e))
    }

    /// The route towards `ip`: egress interface and gateway (`ip route get`).
    ///
    /// # Errors
    /// When the kernel has no route (or refuses the question).
    pub fn route_to(&self, ip: IpAddr) -> Result<Route, HostError> {
        let mut message = RouteMessage::default();
        message.header.address_family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        message.header.destination_prefix_length = prefix_of(ip);
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(ip)));
        let route = block_on(async {
            let mut answer = self.handle.route().get(message).execute();
            answer.try_next().await
        })
        .map_err(|e| host_error(format!("find the route to {ip}"), e))?
        .ok_or_else(|| host_error(format!("find the route to {ip}"), "no answer"))?;
        let mut oif = None;
        let mut gateway = None;
        for a in &route.attributes {
            match a {
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
                _ => {}
            }
        }
        let oif = oif.ok_or_else(|| {
            host_error(
                format!("find the route to {ip}"),
                "the route has no interface",
            )
        })?;
        Ok(Route { oif, gateway })
    }

    /// Adds a *managed* neighbour entry for `ip` on interface `index` (`ip neigh add ...
    /// managed`; Linux 5.16+): the kernel resolves it at once and keeps it resolved while it
    /// exists. With `replace`, an entry that is there (failed, incomplete) becomes managed.
    ///
    /// # Errors
    /// When the kernel refuses it.
    pub fn add_managed_neighbour(
        &self,
        index: u32,
        ip: IpAddr,
        replace: bool,
    ) -> Result<(), HostError> {
        let mut request = self
            .handle
            .neighbours()
            .add(index, ip)
            .state(NeighbourState::None);
        request
            .message_mut()
            .attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        if replace {
            request = request.replace();
        }
        block_on(request.execute())
            .map_err(|e| host_error(format!("add a managed neighbour entry for {ip}"), e))
    }

    /// Deletes the neighbour entry for `ip` on interface `index`; one already gone is not an
    /// error.
    ///
    /// # Errors
    /// When the kernel refuses it.
    pub fn del_neighbour(&self, index: u32, ip: IpAddr) -> Result<(), HostError> {
        let mut message = NeighbourMessage::default();
        message.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        message.header.ifindex = index;
        message
            .attributes
            .push(NeighbourAttribute::Destination(match ip {
                IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
                IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
            }));
        match block_on(self.handle.neighbours().del(message).execute()) {
            Ok(()) => Ok(()),
            Err(e) if code(&e).is_some_and(|c| GONE.contains(&c)) => Ok(()),
            Err(e) => Err(host_error(
                format!("delete the neighbour entry for {ip}"),
                e,
            )),
        }
    }
}
