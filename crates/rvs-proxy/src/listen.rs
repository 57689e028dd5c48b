//! Listening sockets: SO_REUSEPORT so each worker has its own, IP_FREEBIND so a VIP can be
//! configured before the address is up (as IPVS accepts it), non-blocking for tokio; TCP ones
//! with TCP_NODELAY for the connections they accept.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
        s.set_freebind_ipv6(true)?;
    } else {
        s.set_freebind(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SockAddr::from(addr))?;
    Ok(s)
}

/// A TCP listener on `addr`.
///
/// # Errors
/// The system's refusal (address in use by a non-reuseport socket, privileged port, ...).
pub fn tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux copies it with the socket),
    // which saves a setsockopt per connection.
    s.set_nodelay(true)?;
    s.listen(1024)?;
    Ok(s.into())
}

/// A UDP socket bound to `addr`.
///
/// # Errors
/// The system's refusal.
pub fn udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    Ok(socket(addr, Type::DGRAM, Protocol::UDP)?.into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepted_connections_have_nodelay_from_the_listener() {
        let l = super::tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        l.set_nonblocking(false).unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (accepted, _) = l.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
