//! A TCP connect: accepted is up (`L4OK`); refused or unreachable (`L4CON`) or no answer in
//! time (`L4TOUT`) is down. The connection is closed at once.

use crate::outcome::Code;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Connects to `target` within `timeout`.
pub async fn connect(target: SocketAddr, timeout: Duration) -> Result<TcpStream, (Code, String)> {
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err((Code::L4Con, e.to_string())),
        Err(_) => Err((
            Code::L4Tout,
            format!("no answer to the connect in {} ms", timeout.as_millis()),
        )),
    }
}

/// The check.
pub async fn check(target: SocketAddr, timeout: Duration) -> (Code, String) {
    match connect(target, timeout).await {
        Ok(_) => (Code::L4Ok, "connected".to_owned()),
        Err(e) => e,
    }
}
