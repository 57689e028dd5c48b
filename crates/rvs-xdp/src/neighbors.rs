//! The next hop's MAC address for a real server: the kernel's neighbour table, behind a trait so
//! tests can supply their own.

use std::net::Ipv4Addr;

/// Resolves IPv4 addresses to MAC addresses.
pub trait Neighbors: Send {
    /// The MAC address of `ip` on the local link, if known.
    fn mac(&self, ip: Ipv4Addr) -> Option<[u8; 6]>;
}

/// The kernel's ARP table, read from /proc/net/arp.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcArp;

/// Parses /proc/net/arp lines: `IP HWtype Flags HWaddress Mask Device`.
#[must_use]
pub fn parse_arp(text: &str, ip: Ipv4Addr) -> Option<[u8; 6]> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[0].parse::<Ipv4Addr>().ok()? != ip || f[2] == "0x0" {
            return None;
        }
        let mut mac = [0u8; 6];
        let parts: Vec<&str> = f[3].split(':').collect();
        if parts.len() != 6 {
            return None;
        }
        for (m, p) in mac.iter_mut().zip(parts) {
            *m = u8::from_str_radix(p, 16).ok()?;
        }
        (mac != [0; 6]).then_some(mac)
    })
}

impl Neighbors for ProcArp {
    fn mac(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        parse_arp(&std::fs::read_to_string("/proc/net/arp").ok()?, ip)
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
}
