//! Name resolution as ipvsadm does it: hosts by `gethostbyname`/`gethostbyaddr`, ports by
//! `/etc/services`. Behind a trait so listings can be tested without the system's resolver.

use rvs_core::Protocol;
use std::net::{IpAddr, Ipv4Addr};

/// The four lookups ipvsadm makes.
pub trait Resolver {
    /// `gethostbyname`: the first IPv4 address of a host name.
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr>;
    /// `gethostbyaddr`: the name of an address.
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyname`: a service name's port for a protocol.
    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16>;
    /// `getservbyport`: a port's service name for a protocol.
    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String>;
}

/// Resolves nothing: every lookup fails, so output is numeric.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numeric;

impl Resolver for Numeric {
    fn host_to_addr(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn addr_to_host(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_to_port(&self, _: &str, _: Protocol) -> Option<u16> {
        None
    }
    fn port_to_service(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// The system's resolver: getaddrinfo/getnameinfo for hosts, `/etc/services` for ports
/// (what glibc's `files` backend reads for getservbyname).
#[derive(Debug, Clone, Default)]
pub struct System {
    services: Vec<(String, Vec<String>, u16, String)>,
}

impl System {
    /// Loads `/etc/services` (an empty table if it cannot be read).
    #[must_use]
    pub fn new() -> Self {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        Self {
            services: parse_services(&text),
        }
    }
}

/// Parses `/etc/services` lines: `name port/proto [aliases...] [# comment]`.
fn parse_services(text: &str) -> Vec<(String, Vec<String>, u16, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?;
            let mut words = line.split_whitespace();
            let name = words.next()?.to_owned();
            let (port, proto) = words.next()?.split_once('/')?;
            let port = port.parse().ok()?;
            Some((
                name,
                words.map(str::to_owned).collect(),
                port,
                proto.to_owned(),
            ))
        })
        .collect()
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

impl Resolver for System {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        let addrs = dns_lookup::lookup_host(name).ok()?;
        match addrs.into_iter().next()? {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        let name = dns_lookup::lookup_addr(&addr).ok()?;
        // getnameinfo answers with the numeric form when no name exists; gethostbyaddr fails.
        (name.parse::<IpAddr>().is_err()).then_some(name)
    }

    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        let proto = proto_name(protocol);
        self.services
            .iter()
            .find(|(n, aliases, _, p)| {
                p == proto && (n == name || aliases.iter().any(|a| a == name))
            })
            .map(|s| s.2)
    }

    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = proto_name(protocol);
        self.services
            .iter()
            .find(|(_, _, p, pr)| *p == port && pr == proto)
            .map(|s| s.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_lines_parse_with_aliases_and_comments() {
        let s = parse_services("# c\nhttp 80/tcp www # WWW\nhttp 80/udp\nbad line\n");
        assert_eq!(s[0], ("http".into(), vec!["www".into()], 80, "tcp".into()));
        assert_eq!(s.len(), 2);
    }
}
