//! The proxy plane on its own: driven with `Change`s as rvsd drives it, without an rvsd
//! process, against real servers listening on loopback. Every wait is bounded.

use rvs_core::{
    Change, ConnState, DataPlane, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig,
    ServiceKey,
};
use rvs_proxy::ProxyPlane;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(10);

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real server on a port the kernel picks: greets with `id` and echoes.
async fn real(id: u8) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(&[id]).await;
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects through the VIP: the real server's id, and the stream.
async fn through(vip: SocketAddr) -> std::io::Result<(u8, TcpStream)> {
    let mut s = tokio::time::timeout(STEP, TcpStream::connect(vip)).await??;
    let mut id = [0u8; 1];
    tokio::time::timeout(STEP, s.read_exact(&mut id)).await??;
    Ok((id[0], s))
}

fn service(vip: SocketAddr, scheduler: SchedulerKind) -> ServiceConfig {
    ServiceConfig::new(ServiceKey::tcp(vip)).with_scheduler(scheduler)
}

fn dest(service: &ServiceConfig, addr: SocketAddr) -> Change {
    Change::DestAdded {
        service: service.key,
        dest: DestConfig::new(addr, ForwardMethod::Masq),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_alone_make_a_service_that_relays_counts_and_lists() {
    let mut plane = ProxyPlane::new(tokio::runtime::Handle::current(), 1);
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let svc = service(vip, SchedulerKind::Rr);
    let (a, b) = (real(b'A').await, real(b'B').await);
    plane
        .apply(&[
            Change::ServiceAdded(svc.clone()),
            dest(&svc, a),
            dest(&svc, b),
        ])
        .unwrap();
    let mut seen = Vec::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let (id, mut s) = through(vip).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        tokio::time::timeout(STEP, s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, b"ping");
        seen.push(id);
        held.push(s);
    }
    // rr over the kernel's list order (the newest dest, B, first).
    assert_eq!(seen, b"BABA");
    let conns = plane.connections().unwrap();
    assert_eq!(conns.len(), 4, "{conns:?}");
    assert!(conns.iter().all(|c| c.state == ConnState::Established));
    let stats = plane.stats().unwrap();
    assert_eq!(stats[0].counters.conns, 4);
    drop(held);
    // Removed: the VIP stops listening.
    plane
        .apply(&[Change::ServiceRemoved { service: svc.key }])
        .unwrap();
    let refused = tokio::time::timeout(STEP, TcpStream::connect(vip))
        .await
        .unwrap();
    assert!(refused.is_err(), "nothing listens on {vip} any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_removed_and_added_in_one_batch_keeps_listening() {
    let mut plane = ProxyPlane::new(tokio::runtime::Handle::current(), 2);
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let svc = service(vip, SchedulerKind::Wlc);
    let a = real(b'A').await;
    plane
        .apply(&[Change::ServiceAdded(svc.clone()), dest(&svc, a)])
        .unwrap();
    assert_eq!(through(vip).await.unwrap().0, b'A');
    let b = real(b'B').await;
    let again = service(vip, SchedulerKind::Rr);
    plane
        .apply(&[
            Change::ServiceRemoved { service: svc.key },
            Change::ServiceAdded(again.clone()),
            dest(&again, b),
        ])
        .unwrap();
    for _ in 0..3 {
        assert_eq!(through(vip).await.unwrap().0, b'B');
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_by_another_program_is_refused_and_changes_nothing() {
    let mut plane = ProxyPlane::new(tokio::runtime::Handle::current(), 1);
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vip = squatter.local_addr().unwrap();
    let svc = service(vip, SchedulerKind::Rr);
    let e = plane
        .apply(&[Change::ServiceAdded(svc.clone())])
        .unwrap_err();
    assert!(e.to_string().contains(&vip.to_string()), "{e}");
    assert!(
        plane.stats().unwrap().is_empty(),
        "the refused service left nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_attempts_and_refusals_are_counted() {
    let mut plane = ProxyPlane::new(tokio::runtime::Handle::current(), 1);
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let svc = service(vip, SchedulerKind::Wlc);
    // A dest nobody listens on, and one that answers.
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = real(b'A').await;
    plane
        .apply(&[
            Change::ServiceAdded(svc.clone()),
            dest(&svc, a),
            dest(&svc, dead),
        ])
        .unwrap();
    assert_eq!(through(vip).await.unwrap().0, b'A');
    let counter = |plane: &ProxyPlane, name: &str| {
        plane
            .counters()
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    };
    assert_eq!(counter(&plane, "connect_retries"), Some(1));
    // No dest at all: the client is refused and the refusal counted.
    plane
        .apply(&[
            Change::DestRemoved {
                service: svc.key,
                dest: a,
            },
            Change::DestRemoved {
                service: svc.key,
                dest: dead,
            },
        ])
        .unwrap();
    assert!(through(vip).await.is_err());
    assert_eq!(counter(&plane, "refused_no_dest"), Some(1));
}
