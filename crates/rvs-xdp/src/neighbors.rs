//! The next hop's MAC address for a real server: the kernel's neighbour tables, behind a trait
//! so tests can supply their own.
//!
//! IPv4 entries come from /proc/net/arp. The kernel has no /proc file for IPv6 neighbours, so
//! those are read from iproute2's `ip -6 neigh` (present on every LVS director) rather than by
//! a hand-written netlink dump.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Resolves addresses to MAC addresses.
pub trait Neighbors: Send {
    /// The MAC address of `ip` on the local link, if known.
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]>;
}

/// The kernel's neighbour tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelNeighbors;

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    (mac != [0; 6]).then_some(mac)
}

/// Parses /proc/net/arp lines: `IP HWtype Flags HWaddress Mask Device`.
#[must_use]
pub fn parse_arp(text: &str, ip: Ipv4Addr) -> Option<[u8; 6]> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[0].parse::<Ipv4Addr>().ok()? != ip || f[2] == "0x0" {
            return None;
        }
        parse_mac(f[3])
    })
}

/// Parses `ip -6 neigh show` lines: `ADDR dev IF lladdr MAC [router] STATE`; entries without
/// a link-layer address (INCOMPLETE, FAILED) are skipped.
#[must_use]
pub fn parse_ip_neigh(text: &str, ip: Ipv6Addr) -> Option<[u8; 6]> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first()?.parse::<Ipv6Addr>().ok()? != ip {
            return None;
        }
        let at = f.iter().position(|w| *w == "lladdr")?;
        parse_mac(f.get(at + 1)?)
    })
}

impl Neighbors for KernelNeighbors {
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        match ip {
            IpAddr::V4(v4) => parse_arp(&std::fs::read_to_string("/proc/net/arp").ok()?, v4),
            IpAddr::V6(v6) => {
                let out = std::process::Command::new("ip")
                    .args(["-6", "neigh", "show", &v6.to_string()])
                    .output()
                    .ok()?;
                parse_ip_neigh(&String::from_utf8_lossy(&out.stdout), v6)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_lines_parse_and_incomplete_entries_are_skipped() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n198.18.1.2       0x1         0x2         02:00:00:00:01:02     *        eth0\n198.18.1.3       0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            parse_arp(t, "198.18.1.2".parse().unwrap()),
            Some([2, 0, 0, 0, 1, 2])
        );
        assert_eq!(parse_arp(t, "198.18.1.3".parse().unwrap()), None);
        assert_eq!(parse_arp(t, "198.18.1.4".parse().unwrap()), None);
    }

    #[test]
    fn ip_neigh_lines_parse_and_unresolved_entries_are_skipped() {
        let t = "2001:db8::11 dev eth0 lladdr 02:00:00:00:01:11 REACHABLE\n2001:db8::1 dev eth0 lladdr 02:00:00:00:00:01 router STALE\n2001:db8::12 dev eth0 INCOMPLETE\n";
        assert_eq!(
            parse_ip_neigh(t, "2001:db8::11".parse().unwrap()),
            Some([2, 0, 0, 0, 1, 0x11])
        );
        assert_eq!(
            parse_ip_neigh(t, "2001:db8::1".parse().unwrap()),
            Some([2, 0, 0, 0, 0, 1])
        );
        assert_eq!(parse_ip_neigh(t, "2001:db8::12".parse().unwrap()), None);
        assert_eq!(parse_ip_neigh(t, "2001:db8::13".parse().unwrap()), None);
    }
}
