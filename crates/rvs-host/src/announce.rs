//! Telling the link that a VIP is here now: a gratuitous ARP request for an IPv4 VIP, an
//! unsolicited neighbour advertisement (with the override flag) for an IPv6 one, as keepalived
//! sends when it takes a VIP over. Peers that hold an entry for the VIP replace its MAC at
//! once instead of waiting for it to fail.
//!
//! Written by hand: the two messages are fixed layouts of 42 and 32 bytes, and the crates that
//! build packets (pnet and its kin) would bring a whole packet library for them. The ARP frame
//! goes out of an `AF_PACKET` socket; the advertisement out of a raw ICMPv6 socket, whose
//! checksum the kernel computes, with the hop limit of 255 that receivers require.

use crate::netlink::Netlink;
use crate::{host_error, HostError};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];
/// ICMPv6 neighbour advertisement.
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// The advertisement's override flag: replace the cached link-layer address.
const NA_OVERRIDE: u8 = 0x20;
/// The target link-layer address option.
const OPT_TARGET_LLADDR: u8 = 2;

/// The gratuitous ARP request announcing that `vip` is at `mac` (RFC 5227's announcement:
/// sender and target address both the VIP, target hardware address zero).
#[must_use]
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// The ICMPv6 body of an unsolicited neighbour advertisement of `vip` at `mac` (checksum
/// left zero: the kernel fills it in).
#[must_use]
pub fn neighbour_advertisement(mac: [u8; 6], vip: Ipv6Addr) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = ND_NEIGHBOR_ADVERT;
    m[4] = NA_OVERRIDE;
    m[8..24].copy_from_slice(&vip.octets());
    m[24] = OPT_TARGET_LLADDR;
    m[25] = 1; // in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// The link-layer destination of a broadcast frame out of interface `index`.
fn broadcast_on(index: u32) -> Result<SockAddr, HostError> {
    let ifindex = i32::try_from(index)
        .map_err(|_| host_error("send a gratuitous ARP", format!("interface index {index}")))?;
    #[allow(
        unsafe_code,
        reason = "socket2 has no safe constructor for a link-layer (sockaddr_ll) address"
    )]
    // SAFETY: the closure writes a fully initialised sockaddr_ll, which is smaller than the
    // sockaddr_storage it is given, and sets the length to its size.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let mut ll: libc::sockaddr_ll = std::mem::zeroed();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = ETH_P_ARP.to_be();
            ll.sll_ifindex = ifindex;
            ll.sll_halen = 6;
            ll.sll_addr[..6].copy_from_slice(&BROADCAST);
            std::ptr::write(storage.cast::<libc::sockaddr_ll>(), ll);
            *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }
    .map_err(|e| host_error("send a gratuitous ARP", e))?;
    Ok(addr)
}

/// Announces `vip` on interface `dev` with the interface's MAC: `count` times, as keepalived's
/// `garp_master_repeat` does (peers that missed one see the next).
///
/// # Errors
/// When there is no such interface or the socket cannot be made or used (root is needed).
pub fn announce(netlink: &Netlink, dev: &str, vip: IpAddr, count: u32) -> Result<(), HostError> {
    let index = netlink.link_index(dev)?;
    let mac = netlink.link_mac(index)?;
    match vip {
        IpAddr::V4(v4) => {
            let what = || format!("send a gratuitous ARP for {vip} on {dev}");
            let socket =
                Socket::new(Domain::PACKET, Type::RAW, None).map_err(|e| host_error(what(), e))?;
            let to = broadcast_on(index)?;
            let frame = gratuitous_arp(mac, v4);
            for _ in 0..count {
                socket
                    .send_to(&frame, &to)
                    .map_err(|e| host_error(what(), e))?;
            }
        }
        IpAddr::V6(v6) => {
            let what = || format!("send a neighbour advertisement for {vip} on {dev}");
            let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
                .map_err(|e| host_error(what(), e))?;
            socket
                .set_multicast_hops_v6(255)
                .and_then(|()| socket.set_multicast_if_v6(index))
                .and_then(|()| socket.bind_device(Some(dev.as_bytes())))
                .map_err(|e| host_error(what(), e))?;
            let all_nodes =
                SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, index);
            let message = neighbour_advertisement(mac, v6);
            for _ in 0..count {
                socket
                    .send_to(&message, &all_nodes.into())
                    .map_err(|e| host_error(what(), e))?;
            }
        }
    }
    tracing::info!(%vip, dev, count, "VIP announced");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gratuitous_arp_is_an_announcement_of_the_vip() {
        let mac = [2, 0, 0, 0, 0, 1];
        let f = gratuitous_arp(mac, Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(
            f,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, // ethernet
                0, 1, 0x08, 0, 6, 4, 0, 1, // arp request, ethernet/ipv4
                2, 0, 0, 0, 0, 1, 198, 18, 0, 10, // sender
                0, 0, 0, 0, 0, 0, 198, 18, 0, 10, // target
            ]
        );
    }

    #[test]
    fn the_advertisement_overrides_and_carries_the_mac() {
        let m = neighbour_advertisement([2, 0, 0, 0, 0, 1], "2001:db8::10".parse().unwrap());
        assert_eq!(m[..8], [136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(
            m[8..24],
            "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(m[24..], [2, 1, 2, 0, 0, 0, 0, 1]);
    }
}
