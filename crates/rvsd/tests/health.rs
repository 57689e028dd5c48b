//! Health checks end to end: rvsd with the proxy plane and a config file whose service checks
//! its real servers, real servers of the test's own on loopback that the test kills and starts
//! again, and what ipvsadm and client connections see. Every wait is bounded.

mod common;

use common::{err, out, Rvsd};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bounds every wait.
const STEP: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real server greeting each connection with its id; aborting the handle closes it.
async fn real(addr: SocketAddr, id: char) -> JoinHandle<()> {
    let l = TcpListener::bind(addr).await.expect("bind real server");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(format!("{id}\n").as_bytes()).await;
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
            });
        }
    })
}

async fn stop(handle: JoinHandle<()>) {
    handle.abort();
    let _ = handle.await;
}

/// The id of the real server a connection through the VIP reaches.
async fn reached(vip: SocketAddr) -> char {
    let mut s = tokio::time::timeout(STEP, TcpStream::connect(vip))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut id = [0u8; 2];
    tokio::time::timeout(STEP, s.read_exact(&mut id))
        .await
        .expect("greeting in time")
        .expect("greeting");
    id[0] as char
}

/// The weight `-Ln` shows for `dest`, or `None` when it is not listed.
fn listed_weight(d: &Rvsd, dest: SocketAddr) -> Option<u32> {
    let listing = out(&d.ipvsadm(&["-Ln"]));
    listing
        .lines()
        .find(|l| l.contains(&format!("-> {dest}")))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < STEP, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// rvsd (proxy plane) with `config`.
fn rvsd_with(config: &str) -> Rvsd {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rvs.toml");
    std::fs::write(&path, config).unwrap();
    let d = Rvsd::start_raw(&["--dataplane", "proxy", "--config", path.to_str().unwrap()]);
    // The config file must outlive the daemon's reads: keep its directory with the test.
    std::mem::forget(dir);
    d
}

fn config(vip: SocketAddr, reals: &[SocketAddr], extra: &str) -> String {
    let mut c = format!(
        "[[service]]\ntcp = \"{vip}\"\nscheduler = \"rr\"\n{extra}\n\
         [service.check]\ntype = \"tcp\"\ninterval = 0.2\ntimeout = 0.5\nrise = 1\nfall = 2\n"
    );
    for r in reals {
        c.push_str(&format!(
            "\n[[service.real]]\naddr = \"{r}\"\nforward = \"masq\"\n"
        ));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_real_server_is_quiesced_within_its_checks_and_comes_back_after_rise() {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.11.1:{port}").parse().unwrap();
    let a: SocketAddr = format!("127.0.12.1:{port}").parse().unwrap();
    let b: SocketAddr = format!("127.0.12.2:{port}").parse().unwrap();
    let _ra = real(a, 'A').await;
    let rb = real(b, 'B').await;
    let d = rvsd_with(&config(vip, &[a, b], "on_failure = \"quiesce\""));
    eventually("both are up", || {
        listed_weight(&d, a) == Some(1) && listed_weight(&d, b) == Some(1)
    })
    .await;
    stop(rb).await;
    // fall (2) x interval (0.2 s) + timeout (0.5 s) = 0.9 s, with room for a loaded machine.
    eventually("B is quiesced", || listed_weight(&d, b) == Some(0)).await;
    assert!(
        d.save().contains(&format!("-r {b} -m -w 1")),
        "-Sn keeps the operator's weight: {}",
        d.save()
    );
    for _ in 0..20 {
        assert_eq!(
            reached(vip).await,
            'A',
            "after detection nothing reaches the dead server"
        );
    }
    let _rb = real(b, 'B').await;
    eventually("B is back", || listed_weight(&d, b) == Some(1)).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(reached(vip).await);
    }
    assert!(seen.contains(&'B'), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_on_failure_and_the_fallback_serves_only_while_none_is_up() {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.11.2:{port}").parse().unwrap();
    let a: SocketAddr = format!("127.0.13.1:{port}").parse().unwrap();
    let b: SocketAddr = format!("127.0.13.2:{port}").parse().unwrap();
    let sorry: SocketAddr = format!("127.0.13.9:{port}").parse().unwrap();
    let _rf = real(sorry, 'F').await;
    let ra = real(a, 'A').await;
    let rb = real(b, 'B').await;
    let d = rvsd_with(&config(
        vip,
        &[a, b],
        &format!("on_failure = \"remove\"\nfallback = \"{sorry}\""),
    ));
    eventually("both are up", || {
        listed_weight(&d, a) == Some(1) && listed_weight(&d, b) == Some(1)
    })
    .await;
    assert_eq!(
        listed_weight(&d, sorry),
        None,
        "the fallback waits while a real server is up"
    );
    stop(rb).await;
    eventually("B is removed", || listed_weight(&d, b).is_none()).await;
    assert!(
        d.save().contains(&format!("-r {b} -m -w 1")),
        "{}",
        d.save()
    );
    stop(ra).await;
    eventually("the fallback serves", || {
        listed_weight(&d, sorry) == Some(1)
    })
    .await;
    for _ in 0..5 {
        assert_eq!(reached(vip).await, 'F');
    }
    assert!(
        !d.save().contains(&sorry.to_string()),
        "-Sn leaves the fallback out"
    );
    let _ra = real(a, 'A').await;
    eventually("the fallback leaves", || listed_weight(&d, sorry).is_none()).await;
    for _ in 0..5 {
        assert_eq!(reached(vip).await, 'A');
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_revive_a_dead_real_server_for_one_connection() {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.11.3:{port}").parse().unwrap();
    let a: SocketAddr = format!("127.0.14.1:{port}").parse().unwrap();
    let b: SocketAddr = format!("127.0.14.2:{port}").parse().unwrap();
    let _ra = real(a, 'A').await;
    let rb = real(b, 'B').await;
    let mut d = rvsd_with(&config(vip, &[a, b], ""));
    eventually("both are up", || listed_weight(&d, b) == Some(1)).await;
    stop(rb).await;
    eventually("B is quiesced", || listed_weight(&d, b) == Some(0)).await;
    d.kill9();
    d.spawn();
    // From the first listing after the restart, before any check ran, B is not served.
    assert_eq!(
        listed_weight(&d, b),
        Some(0),
        "{}",
        out(&d.ipvsadm(&["-Ln"]))
    );
    eventually("A is up again", || listed_weight(&d, a) == Some(1)).await;
    for _ in 0..10 {
        assert_eq!(reached(vip).await, 'A');
    }
    let o = d.ipvsadm(&["-Ln"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_added_through_the_api_takes_effect_and_survives_a_restart() {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.11.4:{port}").parse().unwrap();
    let a: SocketAddr = format!("127.0.15.1:{port}").parse().unwrap();
    let dead: SocketAddr = format!("127.0.15.2:{port}").parse().unwrap();
    let _ra = real(a, 'A').await;
    let mut d = Rvsd::start_raw(&["--dataplane", "proxy"]);
    for args in [
        vec!["-A", "-t", &vip.to_string(), "-s", "rr"],
        vec!["-a", "-t", &vip.to_string(), "-r", &a.to_string(), "-m"],
        vec!["-a", "-t", &vip.to_string(), "-r", &dead.to_string(), "-m"],
    ] {
        let o = d.ipvsadm(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    assert_eq!(
        listed_weight(&d, dead),
        Some(1),
        "unchecked: served as configured"
    );
    let body = format!(
        r#"{{"command":"set_health_policy","service":{{"kind":"inet","protocol":"tcp","addr":"{vip}"}},
            "policy":{{"check":{{"type":"tcp","interval":0.2,"timeout":0.5}}}}}}"#
    );
    let (code, answer) = d.http("POST", "/v1/commands", body.as_bytes());
    assert_eq!(code, 200, "{answer}");
    eventually("A is up", || listed_weight(&d, a) == Some(1)).await;
    assert_eq!(
        listed_weight(&d, dead),
        Some(0),
        "a dest that never answers stays down"
    );
    for _ in 0..6 {
        assert_eq!(reached(vip).await, 'A');
    }
    // A bad check is refused by name, and nothing changes.
    let bad = body.replace("\"interval\":0.2", "\"interval\":0");
    let (code, answer) = d.http("POST", "/v1/commands", bad.as_bytes());
    assert_eq!(code / 100, 4, "{answer}");
    assert!(answer.contains("interval 0 s must be above 0"), "{answer}");
    // Clients do not set health.
    let forged = format!(
        r#"{{"command":"set_health","service":{{"kind":"inet","protocol":"tcp","addr":"{vip}"}},"dest":"{dead}","health":"up"}}"#
    );
    let (code, answer) = d.http("POST", "/v1/commands", forged.as_bytes());
    assert_eq!(code / 100, 4, "{answer}");
    assert_eq!(listed_weight(&d, dead), Some(0));
    // The check is intent: durable across a restart, and the dead dest starts down.
    d.kill9();
    d.spawn();
    assert_eq!(
        listed_weight(&d, dead),
        Some(0),
        "{}",
        out(&d.ipvsadm(&["-Ln"]))
    );
    eventually("A is up after the restart", || {
        listed_weight(&d, a) == Some(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_what_the_checks_found() {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.11.5:{port}").parse().unwrap();
    let a: SocketAddr = format!("127.0.16.1:{port}").parse().unwrap();
    let _ra = real(a, 'A').await;
    let d = rvsd_with(&config(vip, &[a], ""));
    eventually("A is up", || listed_weight(&d, a) == Some(1)).await;
    for _ in 0..3 {
        d.signal("HUP");
        // Every listing across the reloads shows it up: the reload touched nothing.
        for _ in 0..10 {
            assert_eq!(listed_weight(&d, a), Some(1));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
