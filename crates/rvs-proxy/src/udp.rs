//! UDP: a flow per client address and port, scheduled on its first datagram (or on every
//! datagram with one-packet scheduling), relayed through a socket connected to the real server;
//! replies go back to the client from the virtual address. A flow ends after the UDP timeout
//! without traffic. UDP flows count as inactive connections, as in IPVS.

use crate::registry::Entry;
use crate::shared::Shared;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{ConnState, ConnTicket, Counters, Flow, Protocol, ServiceKey};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Largest datagram relayed.
const DATAGRAM: usize = 65_535;

/// One client's flow.
struct UdpFlow {
    upstream: Arc<UdpSocket>,
    ticket: ConnTicket,
    entry: Arc<Entry>,
}

/// The flows of one service.
#[derive(Default)]
pub struct Flows {
    map: Mutex<HashMap<SocketAddr, Arc<UdpFlow>>>,
}

impl Flows {
    fn get(&self, client: &SocketAddr) -> Option<Arc<UdpFlow>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(client)
            .cloned()
    }

    fn insert(&self, client: SocketAddr, flow: Arc<UdpFlow>) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(client, flow);
    }

    fn remove(&self, client: &SocketAddr) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(client);
    }
}

fn unspecified_like(dest: &SocketAddr) -> SocketAddr {
    let ip: IpAddr = if dest.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(ip, 0)
}

/// Receives datagrams forever on one socket of a service.
pub async fn serve(
    shared: Arc<Shared>,
    key: ServiceKey,
    vip: SocketAddr,
    socket: Arc<UdpSocket>,
    flows: Arc<Flows>,
    one_packet: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut buf = vec![0u8; DATAGRAM];
    let mut rng = SmallRng::seed_from_u64(shared.now().0 ^ u64::from(vip.port()));
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(service = %key, error = %e, "recv failed");
                continue;
            }
        };
        let one_packet = one_packet.load(std::sync::atomic::Ordering::Relaxed);
        let flow = match flows.get(&client).filter(|_| !one_packet) {
            Some(f) => f,
            None => match open(
                &shared, key, vip, client, &socket, &flows, &mut rng, one_packet,
            )
            .await
            {
                Some(f) => f,
                None => continue,
            },
        };
        flow.entry.touch(shared.now().0);
        let _ = flow.upstream.send(&buf[..n]).await;
        if let Some(svc) = shared.table().service_mut(&key) {
            svc.record(
                &flow.ticket,
                Counters {
                    in_pkts: 1,
                    in_bytes: n as u64,
                    ..Counters::default()
                },
            );
        }
    }
}

/// Schedules a new flow and starts its reply task.
#[allow(
    clippy::too_many_arguments,
    reason = "a flow ties together all of these"
)]
async fn open(
    shared: &Arc<Shared>,
    key: ServiceKey,
    vip: SocketAddr,
    client: SocketAddr,
    socket: &Arc<UdpSocket>,
    flows: &Arc<Flows>,
    rng: &mut SmallRng,
    one_packet: bool,
) -> Option<Arc<UdpFlow>> {
    let ticket = {
        let mut table = shared.table();
        let now = shared.now();
        table
            .service_mut(&key)?
            .schedule(&Flow { client, local: vip }, false, now, rng)
            .ok()
    };
    let Some(ticket) = ticket else {
        shared
            .no_dest
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return None;
    };
    let upstream = match UdpSocket::bind(unspecified_like(&ticket.dest)).await {
        Ok(u) if u.connect(ticket.dest).await.is_ok() => Arc::new(u),
        _ => {
            if let Some(svc) = shared.table().service_mut(&key) {
                svc.release(ticket);
            }
            return None;
        }
    };
    let entry = Arc::new(Entry::new(
        Protocol::Udp,
        client,
        vip,
        ticket.dest,
        ConnState::Udp,
        shared.now().0,
    ));
    let flow = Arc::new(UdpFlow {
        upstream: Arc::clone(&upstream),
        ticket: ticket.clone(),
        entry: Arc::clone(&entry),
    });
    if !one_packet {
        flows.insert(client, Arc::clone(&flow));
    }
    let id = shared.registry.insert(Arc::clone(&entry));
    tokio::spawn(replies(
        Arc::clone(shared),
        key,
        client,
        Arc::clone(socket),
        upstream,
        Arc::clone(flows),
        ticket,
        entry,
        id,
        one_packet,
    ));
    Some(flow)
}

/// Relays replies to the client until the flow is idle for the UDP timeout.
#[allow(
    clippy::too_many_arguments,
    reason = "a flow ties together all of these"
)]
async fn replies(
    shared: Arc<Shared>,
    key: ServiceKey,
    client: SocketAddr,
    socket: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    flows: Arc<Flows>,
    ticket: ConnTicket,
    entry: Arc<Entry>,
    id: u64,
    one_packet: bool,
) {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let idle = shared.udp_timeout();
        let since = Duration::from_millis(shared.now().0.saturating_sub(entry.last_active_ms()));
        let wait = idle.saturating_sub(since);
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, upstream.recv(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(n)) => {
                entry.touch(shared.now().0);
                let _ = socket.send_to(&buf[..n], client).await;
                if let Some(svc) = shared.table().service_mut(&key) {
                    svc.record(
                        &ticket,
                        Counters {
                            out_pkts: 1,
                            out_bytes: n as u64,
                            ..Counters::default()
                        },
                    );
                }
                if one_packet {
                    break;
                }
            }
            Ok(Err(_)) => break,
        }
    }
    if !one_packet {
        flows.remove(&client);
    }
    shared.registry.remove(id);
    if let Some(svc) = shared.table().service_mut(&key) {
        svc.release(ticket);
    }
}
