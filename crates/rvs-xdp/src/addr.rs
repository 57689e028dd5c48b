//! Addresses between Rust and the maps: an [`abi::Addr`] holds an IPv6 address, or an IPv4
//! address in its first word and zeros, each word the raw network-order bytes read natively.

use rvs_bpf_abi as abi;
use rvs_core::PersistMask;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Four native words over 16 network-order bytes.
fn words(bytes: [u8; 16]) -> abi::Addr {
    let mut w = [0u32; 4];
    for (i, word) in w.iter_mut().enumerate() {
        *word = u32::from_ne_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ]);
    }
    w
}

fn bytes(addr: &abi::Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, word) in addr.iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    b
}

/// An IPv4 address as one map word (network byte order in a native u32).
#[must_use]
pub fn word_v4(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// An address as the maps hold it, with its family byte.
#[must_use]
pub fn to_map(ip: IpAddr) -> (abi::Addr, u8) {
    abi::addr_of(ip)
}

/// The address a map entry of family `af` holds.
#[must_use]
pub fn from_map(addr: &abi::Addr, af: u8) -> IpAddr {
    if af == abi::AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(bytes(addr)))
    } else {
        IpAddr::V4(Ipv4Addr::from(addr[0].to_ne_bytes()))
    }
}

/// A persistence netmask as the program applies it to client addresses: `-M` for IPv4, the
/// prefix for IPv6.
#[must_use]
pub fn mask(mask: PersistMask) -> abi::Addr {
    match mask {
        PersistMask::V4(m) => [word_v4(m), 0, 0, 0],
        PersistMask::V6(prefix) => {
            let bits = u32::from(prefix.min(128));
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            words(m.to_be_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_with_their_family() {
        for ip in ["198.18.0.1", "2001:db8::1", "::", "0.0.0.0"] {
            let ip: IpAddr = ip.parse().unwrap();
            let (a, af) = to_map(ip);
            assert_eq!(from_map(&a, af), ip);
        }
        let (a, _) = to_map("2001:db8::1".parse().unwrap());
        assert_eq!(a[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
    }

    #[test]
    fn masks_cover_the_prefix() {
        let m = mask(PersistMask::V6(56));
        let b = bytes(&m);
        assert_eq!(&b[..7], &[0xff; 7]);
        assert_eq!(&b[7..], &[0; 9]);
        assert_eq!(
            mask(PersistMask::V4("255.255.255.0".parse().unwrap())),
            [word_v4("255.255.255.0".parse().unwrap()), 0, 0, 0]
        );
        assert_eq!(mask(PersistMask::V6(128)), [u32::MAX; 4]);
    }
}
