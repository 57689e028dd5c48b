//! Transport protocols and address families, as IPVS names them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The transport protocol of a virtual service (`-t`, `-u`, `--sctp-service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// SCTP (IP protocol 132).
    Sctp,
}

impl Protocol {
    /// The IP protocol number, which libipvs uses to sort services.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    /// The upper-case name ipvsadm prints (`TCP`, `UDP`, `SCTP`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An address family: IPv4 (`AF_INET`) or IPv6 (`AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// The family of an address.
    #[must_use]
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }

    /// The Linux `AF_*` number (2 or 10), which libipvs uses to sort services.
    #[must_use]
    pub const fn number(self) -> u16 {
        match self {
            Self::Inet => 2,
            Self::Inet6 => 10,
        }
    }
}

/// Folds an address to 32 bits the way IPVS hashes do: the IPv4 address in host order, or the
/// XOR of an IPv6 address's four 32-bit words (`addr_fold` in ip_vs_sh.c and ip_vs_mh.c).
#[must_use]
pub fn addr_fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(v4) => u32::from(*v4),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            // XOR of the four big-endian words equals ntohl of the XOR of the raw words.
            (0..4).fold(0u32, |acc, i| {
                acc ^ u32::from_be_bytes([o[i * 4], o[i * 4 + 1], o[i * 4 + 2], o[i * 4 + 3]])
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_fold_of_ipv4_is_host_order() {
        assert_eq!(addr_fold(&"10.0.0.1".parse().unwrap()), 0x0A00_0001);
    }

    #[test]
    fn addr_fold_of_ipv6_xors_the_four_words() {
        let a: IpAddr = "2001:db8::1:0:0:1".parse().unwrap();
        assert_eq!(addr_fold(&a), 0x2001_0db8 ^ 0x0001_0000 ^ 0x0000_0001);
    }
}
