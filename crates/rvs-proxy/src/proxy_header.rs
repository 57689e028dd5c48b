//! PROXY protocol headers (v1 text, v2 binary) that tell a real server the client's address,
//! which a full-NAT relay otherwise hides. Only the encoder of the two fixed TCP forms is needed,
//! a few lines that no dependency would make simpler.

use rvs_core::ProxyProtocol;
use std::net::SocketAddr;

/// The v2 signature.
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// The header for a TCP connection from `client` to `vip`. Mixed families (which full NAT
/// cannot produce) fall back to v1's `UNKNOWN` / v2's LOCAL command.
#[must_use]
pub fn encode(version: ProxyProtocol, client: SocketAddr, vip: SocketAddr) -> Vec<u8> {
    match version {
        ProxyProtocol::V1 => match (client, vip) {
            (SocketAddr::V4(c), SocketAddr::V4(v)) => format!(
                "PROXY TCP4 {} {} {} {}\r\n",
                c.ip(),
                v.ip(),
                c.port(),
                v.port()
            )
            .into_bytes(),
            (SocketAddr::V6(c), SocketAddr::V6(v)) => format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                c.ip(),
                v.ip(),
                c.port(),
                v.port()
            )
            .into_bytes(),
            _ => b"PROXY UNKNOWN\r\n".to_vec(),
        },
        ProxyProtocol::V2 => {
            let mut h = V2_SIGNATURE.to_vec();
            match (client, vip) {
                (SocketAddr::V4(c), SocketAddr::V4(v)) => {
                    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    h.extend_from_slice(&c.ip().octets());
                    h.extend_from_slice(&v.ip().octets());
                    h.extend_from_slice(&c.port().to_be_bytes());
                    h.extend_from_slice(&v.port().to_be_bytes());
                }
                (SocketAddr::V6(c), SocketAddr::V6(v)) => {
                    h.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    h.extend_from_slice(&c.ip().octets());
                    h.extend_from_slice(&v.ip().octets());
                    h.extend_from_slice(&c.port().to_be_bytes());
                    h.extend_from_slice(&v.port().to_be_bytes());
                }
                _ => h.extend_from_slice(&[0x20, 0x00, 0, 0]),
            }
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_is_the_text_line() {
        let h = encode(
            ProxyProtocol::V1,
            "198.18.0.9:5000".parse().unwrap(),
            "198.18.0.1:80".parse().unwrap(),
        );
        assert_eq!(h, b"PROXY TCP4 198.18.0.9 198.18.0.1 5000 80\r\n");
    }

    #[test]
    fn v2_has_the_signature_family_and_addresses() {
        let h = encode(
            ProxyProtocol::V2,
            "[2001:db8::9]:5000".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        );
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[48..52], &[0x13, 0x88, 0x01, 0xBB]);
    }
}
