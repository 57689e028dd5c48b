//! The proxy plane end to end: real rvsd processes relaying real TCP and UDP traffic on
//! loopback (127.0.0.0/8 only) between test clients and test real servers. Every load loop is
//! bounded in count and time.

mod common;

use common::{err, out, Rvsd};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// Bounds every await in these tests.
const STEP: Duration = Duration::from_secs(20);

fn proxy() -> Rvsd {
    Rvsd::start_raw(&["--dataplane", "proxy"])
}

/// A free port (on 127.0.0.1; other 127.x addresses are used with it, where it is free too).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP real server: greets each connection with its one-letter id and a newline, then echoes.
async fn tcp_real(addr: SocketAddr, id: char) -> SocketAddr {
    let l = TcpListener::bind(addr).await.expect("bind real server");
    let local = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(format!("{id}\n").as_bytes()).await;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    local
}

/// Connects through the VIP (optionally from a given source address) and reads the greeting.
async fn connect_from(vip: SocketAddr, source: Option<SocketAddr>) -> (TcpStream, char) {
    let sock = TcpSocket::new_v4().unwrap();
    if let Some(src) = source {
        sock.bind(src).unwrap();
    }
    let mut s = tokio::time::timeout(STEP, sock.connect(vip))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut id = [0u8; 2];
    tokio::time::timeout(STEP, s.read_exact(&mut id))
        .await
        .expect("greeting in time")
        .expect("greeting");
    (s, id[0] as char)
}

async fn connect(vip: SocketAddr) -> (TcpStream, char) {
    connect_from(vip, None).await
}

/// Sets up a TCP service with `ids` real servers, added so the kernel's list order is `ids`'s.
async fn tcp_service(
    d: &Rvsd,
    scheduler: &str,
    ids: &[(char, u32)],
    extra: &[&str],
) -> (SocketAddr, Vec<SocketAddr>) {
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.1:{port}").parse().unwrap();
    let mut args = vec!["-A", "-t", &format!("{vip}")]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    args.extend(["-s", scheduler].iter().map(|s| (*s).to_owned()));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let o = d.ipvsadm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", err(&o));
    let mut reals = Vec::new();
    for (i, (id, _)) in ids.iter().enumerate() {
        let addr: SocketAddr = format!("127.0.10.{}:{port}", i + 1).parse().unwrap();
        reals.push(tcp_real(addr, *id).await);
    }
    for (r, (_, w)) in reals.iter().zip(ids).rev() {
        let o = d.ipvsadm(&[
            "-a",
            "-t",
            &vip.to_string(),
            "-r",
            &r.to_string(),
            "-m",
            "-w",
            &w.to_string(),
        ]);
        assert!(o.status.success(), "{}", err(&o));
    }
    (vip, reals)
}

fn stats_line(d: &Rvsd, dest: SocketAddr) -> Vec<u64> {
    let listing = out(&d.ipvsadm(&["-Ln", "--stats", "--exact"]));
    let line = listing
        .lines()
        .find(|l| l.contains(&format!("-> {dest}")))
        .unwrap_or_else(|| panic!("{dest} in {listing}"));
    line.split_whitespace()
        .skip(2)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn conns(d: &Rvsd, dest: SocketAddr) -> (u32, u32) {
    let listing = out(&d.ipvsadm(&["-Ln"]));
    let line = listing
        .lines()
        .find(|l| l.contains(&format!("-> {dest}")))
        .unwrap_or_else(|| panic!("{dest} in {listing}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[4].parse().unwrap(), f[5].parse().unwrap())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rr_gives_each_real_server_exactly_its_share() {
    let d = proxy();
    let (vip, _) = tcp_service(&d, "rr", &[('A', 1), ('B', 1), ('C', 1)], &[]).await;
    let mut seen = Vec::new();
    for _ in 0..30 {
        seen.push(connect(vip).await.1);
    }
    assert_eq!(seen.iter().collect::<String>(), "ABC".repeat(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrr_follows_the_kernel_sequence() {
    let d = proxy();
    let (vip, _) = tcp_service(&d, "wrr", &[('A', 4), ('B', 3), ('C', 2)], &[]).await;
    let mut seen = String::new();
    for _ in 0..18 {
        seen.push(connect(vip).await.1);
    }
    // Added C, B, A one by one: the kernel's mark carries cw = 1 over the adds, so the
    // first pass is at weight 1 (ip_vs_wrr_dest_changed), then 4, 3, 2, 1, ...
    assert_eq!(seen, "ABCAABABC".repeat(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiesced_real_server_gets_nothing_new_while_its_open_connection_flows() {
    let d = proxy();
    let (vip, reals) = tcp_service(&d, "rr", &[('A', 1), ('B', 1)], &[]).await;
    let (mut held, id) = connect(vip).await;
    assert_eq!(id, 'A');
    let o = d.ipvsadm(&[
        "-e",
        "-t",
        &vip.to_string(),
        "-r",
        &reals[0].to_string(),
        "-m",
        "-w",
        "0",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    for _ in 0..10 {
        assert_eq!(connect(vip).await.1, 'B');
    }
    held.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(STEP, held.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"still here");
    assert_eq!(
        conns(&d, reals[0]),
        (1, 0),
        "the quiesced dest keeps its active connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_keeps_a_client_and_the_netmask_groups_clients() {
    let d = proxy();
    let (vip, _) = tcp_service(
        &d,
        "rr",
        &[('A', 1), ('B', 1), ('C', 1)],
        &["-p", "60", "-M", "255.255.255.0"],
    )
    .await;
    let from = |ip: &str| Some(format!("{ip}:0").parse().unwrap());
    let first = connect_from(vip, from("127.0.20.1")).await.1;
    for _ in 0..5 {
        assert_eq!(connect_from(vip, from("127.0.20.1")).await.1, first);
        assert_eq!(
            connect_from(vip, from("127.0.20.77")).await.1,
            first,
            "same /24, same real server"
        );
    }
    let other = connect_from(vip, from("127.0.21.1")).await.1;
    assert_ne!(
        other, first,
        "another network gets the scheduler's next pick"
    );
    let templates = out(&d.ipvsadm(&["-Lnc"]));
    assert!(
        templates
            .lines()
            .any(|l| l.contains("NONE") && l.contains("127.0.20.0:0")),
        "{templates}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_and_readding_a_real_server_under_load_drops_no_connection() {
    let d = proxy();
    let (vip, reals) = tcp_service(&d, "rr", &[('A', 1), ('B', 1), ('C', 1)], &[]).await;
    let mut open = Vec::new();
    for _ in 0..6 {
        open.push(connect(vip).await);
    }
    let o = d.ipvsadm(&["-d", "-t", &vip.to_string(), "-r", &reals[1].to_string()]);
    assert!(o.status.success(), "{}", err(&o));
    for _ in 0..6 {
        assert_ne!(
            connect(vip).await.1,
            'B',
            "a removed real server takes no new connection"
        );
    }
    let o = d.ipvsadm(&[
        "-a",
        "-t",
        &vip.to_string(),
        "-r",
        &reals[1].to_string(),
        "-m",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let mut again = String::new();
    for _ in 0..6 {
        again.push(connect(vip).await.1);
    }
    assert!(
        again.contains('B'),
        "the re-added real server is scheduled again: {again}"
    );
    // Every connection opened before, the removed server's included, still flows.
    for (s, id) in &mut open {
        s.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        tokio::time::timeout(STEP, s.read_exact(&mut b))
            .await
            .expect("echo in time")
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(&b, b"ping");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_real_server_is_replaced_by_the_next_pick_under_every_scheduler() {
    let d = proxy();
    // The dead real server is added last, so it is first in the kernel's list order: the
    // least-connection schedulers pick it whenever every dest is idle.
    for (scheduler, extra) in [
        ("wlc", &[][..]),
        ("lc", &[]),
        ("sed", &[]),
        ("nq", &[]),
        ("rr", &[]),
        ("wrr", &[]),
        ("wlc", &["-p", "60"]),
    ] {
        let (vip, reals) = tcp_service(&d, scheduler, &[('A', 1)], extra).await;
        // A real server nobody listens on.
        let dead: SocketAddr = format!("127.0.10.50:{}", vip.port()).parse().unwrap();
        let o = d.ipvsadm(&["-a", "-t", &vip.to_string(), "-r", &dead.to_string(), "-m"]);
        assert!(o.status.success(), "{}", err(&o));
        for i in 0..5 {
            let (s, id) = connect(vip).await;
            assert_eq!(id, 'A', "{scheduler} {extra:?}: request {i}");
            drop(s);
        }
        // Conns counts the clients' connections, not the attempts on the dead one.
        let deadline = Instant::now() + STEP;
        loop {
            let (alive, refused) = (stats_line(&d, reals[0])[0], stats_line(&d, dead)[0]);
            if (alive, refused) == (5, 0) || Instant::now() > deadline {
                assert_eq!((alive, refused), (5, 0), "{scheduler} {extra:?}: Conns");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            conns(&d, dead),
            (0, 0),
            "{scheduler}: nothing held on the dead dest"
        );
    }
    // The plane counted its retries.
    let (_, health) = d.http("GET", "/v1/health", b"");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let retries = health["plane_counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "connect_retries")
        .and_then(|c| c["value"].as_u64())
        .unwrap_or(0);
    assert!(retries >= 7, "one retry at least per scheduler: {health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_deletes_and_adds_a_service_again_keeps_its_vip_listening() {
    let d = proxy();
    let (vip, reals) = tcp_service(&d, "rr", &[('A', 1)], &[]).await;
    let real = reals[0];
    let scripts = [
        format!("-C\n-A -t {vip}\n-a -t {vip} -r {real} -m\n"),
        format!("-D -t {vip}\n-A -t {vip} -s wrr\n-a -t {vip} -r {real} -m\n"),
        format!(
            "-D -t {vip}\n-A -t {vip}\n-D -t {vip}\n-A -t {vip} -s sh\n-a -t {vip} -r {real} -m\n"
        ),
    ];
    for script in &scripts {
        let o = d.ipvsadm_stdin(&["-R"], script.as_bytes());
        assert!(o.status.success(), "{script}: {}", err(&o));
        for i in 0..3 {
            let (_, id) = connect(vip).await;
            assert_eq!(id, 'A', "{script:?}: request {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_the_connection_list_match_what_was_sent() {
    let d = proxy();
    let (vip, reals) = tcp_service(&d, "rr", &[('A', 1)], &[]).await;
    let (mut s, _) = connect(vip).await;
    let payload = vec![7u8; 100_000];
    s.write_all(&payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(STEP, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    let client = s.local_addr().unwrap();
    let list = out(&d.ipvsadm(&["-Lnc"]));
    let row = list
        .lines()
        .find(|l| l.contains(&client.to_string()))
        .unwrap_or_else(|| panic!("{client} in {list}"));
    assert!(
        row.starts_with("TCP ")
            && row.contains("ESTABLISHED")
            && row.contains(&vip.to_string())
            && row.ends_with(&reals[0].to_string()),
        "{row}"
    );
    drop(s);
    eventually("the connection is released", || {
        conns(&d, reals[0]) == (0, 0)
    })
    .await;
    let st = stats_line(&d, reals[0]);
    assert_eq!(st[0], 1, "Conns");
    assert_eq!(st[3], 100_000, "InBytes: exactly what the client sent");
    assert_eq!(st[4], 100_002, "OutBytes: the greeting and the echo");
    assert!(
        st[1] >= 1 && st[2] >= 2,
        "reads (splice calls) counted as packets: {st:?}"
    );
    assert!(!out(&d.ipvsadm(&["-Lnc"])).contains(&client.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_service_relays_and_expires_flows_with_its_timeout() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.2:{port}").parse().unwrap();
    let real: SocketAddr = format!("127.0.11.1:{port}").parse().unwrap();
    let server = UdpSocket::bind(real).await.unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let mut reply = b"R:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = server.send_to(&reply, from).await;
        }
    });
    for args in [
        vec!["--set", "0", "0", "2"],
        vec!["-A", "-u", &vip.to_string(), "-s", "rr"],
        vec!["-a", "-u", &vip.to_string(), "-r", &real.to_string(), "-m"],
    ] {
        let o = d.ipvsadm(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"hello", vip).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(STEP, client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"R:hello"[..], vip),
        "replies come from the VIP"
    );
    let me = client.local_addr().unwrap().to_string();
    assert!(out(&d.ipvsadm(&["-Lnc"]))
        .lines()
        .any(|l| l.starts_with("UDP") && l.contains(&me)));
    assert_eq!(conns(&d, real), (0, 1), "a UDP flow counts as inactive");
    eventually("the UDP flow expires after 2 s", || {
        conns(&d, real) == (0, 0)
    })
    .await;
    assert!(!out(&d.ipvsadm(&["-Lnc"])).contains(&me));
    let st = stats_line(&d, real);
    assert_eq!((st[0], st[1], st[2], st[3], st[4]), (1, 1, 1, 5, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_each_way_arrives_intact() {
    let d = proxy();
    let (vip, _) = tcp_service(&d, "rr", &[('A', 1)], &[]).await;
    let (s, _) = connect(vip).await;
    let (mut r, mut w) = s.into_split();
    const TOTAL: u64 = 1 << 30;
    // A deterministic stream: the reader regenerates it and compares as it goes.
    fn block(i: u64, buf: &mut [u8]) {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
    }
    const BLOCK: usize = 1 << 20;
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; BLOCK];
        for i in 0..TOTAL / BLOCK as u64 {
            block(i, &mut buf);
            w.write_all(&buf).await.unwrap();
        }
        w.shutdown().await.unwrap();
    });
    let deadline = Duration::from_secs(240);
    let reader = tokio::time::timeout(deadline, async move {
        let (mut want, mut got) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
        for i in 0..TOTAL / BLOCK as u64 {
            r.read_exact(&mut got).await.unwrap();
            block(i, &mut want);
            assert!(got == want, "block {i} differs");
        }
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "nothing after the stream, and the half-close arrived"
        );
    });
    reader.await.expect("1 GiB each way within 4 minutes");
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_connections_leave_no_fd_or_count_behind() {
    let d = proxy();
    let (vip, reals) = tcp_service(&d, "wlc", &[('A', 1), ('B', 1), ('C', 1)], &[]).await;
    let pid = d.child.as_ref().unwrap().id();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(Iterator::count)
            .unwrap_or(0)
    };
    let rss = || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap()
    };
    // Warm up once so lazily created resources are counted in the baseline.
    drop(connect(vip).await);
    eventually("warm-up released", || {
        reals.iter().all(|r| conns(&d, *r) == (0, 0))
    })
    .await;
    let (fd_before, rss_before) = (fds(), rss());
    const N: usize = 2000;
    let opened = Arc::new(AtomicUsize::new(0));
    // Open them in waves so the listen backlogs are not flooded with SYNs, and hold them all.
    let mut held = Vec::new();
    for wave in 0..N / 250 {
        let mut tasks = Vec::new();
        for i in wave * 250..(wave + 1) * 250 {
            let opened = Arc::clone(&opened);
            tasks.push(tokio::spawn(async move {
                let (mut s, id) = connect(vip).await;
                opened.fetch_add(1, Ordering::Relaxed);
                let msg = format!("conn {i}");
                s.write_all(msg.as_bytes()).await.unwrap();
                let mut back = vec![0u8; msg.len()];
                tokio::time::timeout(STEP, s.read_exact(&mut back))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(back, msg.as_bytes());
                (s, id)
            }));
        }
        for t in tasks {
            held.push(
                tokio::time::timeout(Duration::from_secs(60), t)
                    .await
                    .expect("in time")
                    .expect("connection"),
            );
        }
    }
    assert_eq!(opened.load(Ordering::Relaxed), N);
    let active: u32 = reals.iter().map(|r| conns(&d, *r).0).sum();
    assert_eq!(active as usize, N, "every relay counts as active");
    let mut per: HashMap<char, usize> = HashMap::new();
    for (_, id) in &held {
        *per.entry(*id).or_default() += 1;
    }
    assert!(
        per.values().all(|&n| n > N / 4),
        "wlc spreads the load: {per:?}"
    );
    drop(held);
    eventually("every relay is released", || {
        reals.iter().all(|r| conns(&d, *r) == (0, 0))
    })
    .await;
    eventually("the fds are closed", || fds() <= fd_before + 2).await;
    assert!(
        out(&d.ipvsadm(&["-Lnc"])).lines().count() == 2,
        "no connection left in -Lc"
    );
    let grown = rss().saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB after {N} connections closed"
    );
}

#[test]
fn the_proxy_plane_refuses_what_it_cannot_do_and_says_which_plane_can() {
    let d = proxy();
    let port = free_port();
    let vip = format!("127.0.9.3:{port}");
    assert!(d.ipvsadm(&["-A", "-t", &vip]).status.success());
    let o = d.ipvsadm(&["-a", "-t", &vip, "-r", "127.0.10.9"]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        err(&o),
        format!("the proxy data plane cannot forward to real server 127.0.10.9:{port} by direct routing (-g); it relays with masquerading (-m) only; use --dataplane xdp\n")
    );
    let o = d.ipvsadm(&["-A", "-f", "1"]);
    assert!(
        err(&o).contains("firewall-mark service FWM 1") && err(&o).contains("--dataplane xdp"),
        "{}",
        err(&o)
    );
    let o = d.ipvsadm(&["-A", "--sctp-service", &vip]);
    assert!(err(&o).contains("SCTP"), "{}", err(&o));
    assert_eq!(
        d.save(),
        format!("-A -t {vip} -s wlc\n"),
        "nothing refused was applied"
    );
}

#[test]
fn the_demo_serves_http_through_its_virtual_service() {
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let listen = format!("127.0.9.4:{port}");
    let mut child = std::process::Command::new(common::rvsd_bin())
        .args([
            "demo",
            "--listen",
            &listen,
            "--duration",
            "20",
            "--dir",
            tmp.path().to_str().unwrap(),
        ])
        .env("RVS_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STEP;
    let mut answers = Vec::new();
    while answers.len() < 3 && Instant::now() < deadline {
        use std::io::{Read, Write};
        if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            if r.starts_with("HTTP/1.1 200 OK") {
                answers.push(r.lines().last().unwrap_or_default().to_owned());
            }
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answers.len(), 3, "{answers:?}");
    let servers: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| a.split(" (").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        servers.len(),
        3,
        "rr takes turns over the three real servers: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_protocol_header_tells_the_real_server_who_the_client_is() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.5:{port}").parse().unwrap();
    let real: SocketAddr = format!("127.0.12.1:{port}").parse().unwrap();
    // The real server answers with the first 28 bytes it receives, hex-encoded, then closes
    // cleanly (it reads the rest first: closing with unread data would send an RST).
    let l = TcpListener::bind(real).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = [0u8; 28];
                if s.read_exact(&mut head).await.is_ok() {
                    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
                    let _ = s.write_all(hex.as_bytes()).await;
                    let _ = s.shutdown().await;
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                }
            });
        }
    });
    for args in [
        vec![
            "-A",
            "-t",
            &vip.to_string(),
            "-s",
            "rr",
            "--proxy-protocol",
            "v1",
        ],
        vec!["-a", "-t", &vip.to_string(), "-r", &real.to_string(), "-m"],
    ] {
        let o = d.ipvsadm(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    assert!(d
        .save()
        .starts_with(&format!("-A -t {vip} -s rr --proxy-protocol v1\n")));
    let ask = |source: &'static str| async move {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(source.parse().unwrap()).unwrap();
        let mut s = sock.connect(vip).await.unwrap();
        s.write_all(&[b'x'; 28]).await.unwrap();
        let mut hex = String::new();
        tokio::time::timeout(STEP, s.read_to_string(&mut hex))
            .await
            .unwrap()
            .unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes
    };
    let v1 = ask("127.0.22.7:40001").await;
    let expected = format!("PROXY TCP4 127.0.22.7 {} 40001 {port}\r\n", vip.ip());
    assert_eq!(
        String::from_utf8_lossy(&v1[..expected.len().min(28)]),
        expected[..expected.len().min(28)]
    );
    let o = d.ipvsadm(&[
        "-E",
        "-t",
        &vip.to_string(),
        "-s",
        "rr",
        "--proxy-protocol",
        "v2",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let v2 = ask("127.0.22.8:40002").await;
    assert_eq!(&v2[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
    assert_eq!(&v2[16..20], &[127, 0, 22, 8]);
    assert_eq!(&v2[20..24], &[127, 0, 9, 5]);
    assert_eq!(u16::from_be_bytes([v2[24], v2[25]]), 40002);
    assert_eq!(u16::from_be_bytes([v2[26], v2[27]]), port);
    let o = d.ipvsadm(&[
        "-a",
        "-t",
        &vip.to_string(),
        "-r",
        "127.0.12.2",
        "-m",
        "--proxy-protocol",
        "v1",
    ]);
    assert_eq!(
        (err(&o).as_str(), o.status.code()),
        (
            "Illegal 'proxy-protocol' option with the 'add-server' command\n",
            Some(2)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_service_relays_to_ipv6_real_servers() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let l1 = std::net::TcpListener::bind("[::1]:0").unwrap();
    let r1 = l1.local_addr().unwrap();
    drop(l1);
    let real = tcp_real(r1, 'S').await;
    for args in [
        vec!["-A", "-t", &format!("[::1]:{port}"), "-s", "rr"],
        vec![
            "-a",
            "-t",
            &format!("[::1]:{port}"),
            "-r",
            &real.to_string(),
            "-m",
        ],
    ] {
        let o = d.ipvsadm(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    let mut s = tokio::time::timeout(STEP, TcpStream::connect(vip))
        .await
        .unwrap()
        .unwrap();
    let mut id = [0u8; 2];
    tokio::time::timeout(STEP, s.read_exact(&mut id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&id, b"S\n");
    assert!(out(&d.ipvsadm(&["-Ln"])).contains(&format!("TCP  [::1]:{port} rr\n  -> {real}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_from_the_real_server_reaches_the_client() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.6:{port}").parse().unwrap();
    let real: SocketAddr = format!("127.0.13.1:{port}").parse().unwrap();
    // A real server that resets every connection once it has read a byte.
    let l = TcpListener::bind(real).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                let _ = s.read_exact(&mut b).await;
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            });
        }
    });
    for args in [
        vec!["-A", "-t", &vip.to_string()],
        vec!["-a", "-t", &vip.to_string(), "-r", &real.to_string(), "-m"],
    ] {
        assert!(d.ipvsadm(&args).status.success());
    }
    let mut s = TcpStream::connect(vip).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 16];
    let got = tokio::time::timeout(STEP, s.read(&mut buf))
        .await
        .expect("the relay ends in time");
    assert_eq!(
        got.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "an RST, not a clean close"
    );
}

/// A connection closed from both ends, the real server first, ends with a FIN each way and no
/// reset: the relay passes the server's FIN on with shutdown(2) and the client's by closing
/// the server's socket, which it has read to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_from_both_ends_ends_with_fins_not_resets() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.7:{port}").parse().unwrap();
    let real: SocketAddr = format!("127.0.13.2:{port}").parse().unwrap();
    // A real server that answers one request, half-closes, then waits for the client's end.
    let l = TcpListener::bind(real).await.unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = [0u8; 4];
        s.read_exact(&mut req).await.unwrap();
        s.write_all(b"pong").await.unwrap();
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.map(|_| rest)
    });
    for args in [
        vec!["-A", "-t", &vip.to_string()],
        vec!["-a", "-t", &vip.to_string(), "-r", &real.to_string(), "-m"],
    ] {
        assert!(d.ipvsadm(&args).status.success());
    }
    let mut c = TcpStream::connect(vip).await.unwrap();
    c.write_all(b"ping").await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, c.read_to_end(&mut reply))
        .await
        .expect("the server's FIN reaches the client in time")
        .expect("a clean end, not a reset");
    assert_eq!(reply, b"pong");
    c.write_all(b"late").await.unwrap();
    drop(c);
    let seen = tokio::time::timeout(STEP, server)
        .await
        .expect("the client's FIN reaches the server in time")
        .unwrap();
    assert_eq!(
        seen.map_err(|e| e.kind()),
        Ok(b"late".to_vec()),
        "the data sent after the server's half-close, then a FIN, not an RST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_packet_scheduling_schedules_every_datagram() {
    let d = proxy();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.9.7:{port}").parse().unwrap();
    let mut reals = Vec::new();
    for (i, id) in ["A", "B"].iter().enumerate() {
        let addr: SocketAddr = format!("127.0.14.{}:{port}", i + 1).parse().unwrap();
        let s = UdpSocket::bind(addr).await.unwrap();
        let id = (*id).to_owned();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((_, from)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(id.as_bytes(), from).await;
            }
        });
        reals.push(addr);
    }
    assert!(d
        .ipvsadm(&["-A", "-u", &vip.to_string(), "-s", "rr", "-o"])
        .status
        .success());
    for r in reals.iter().rev() {
        assert!(d
            .ipvsadm(&["-a", "-u", &vip.to_string(), "-r", &r.to_string(), "-m"])
            .status
            .success());
    }
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seen = String::new();
    for _ in 0..6 {
        client.send_to(b"q", vip).await.unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = tokio::time::timeout(STEP, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert_eq!(
        seen, "ABABAB",
        "one client, every datagram scheduled on its own"
    );
}

/// One VIP port taken by another program when rvsd starts: the other services run, the
/// table is unchanged, the API names the one left out, and it is served once the port is
/// free (changes made to it meanwhile included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occupied_vip_port_at_start_leaves_the_other_services_running() {
    let mut d = proxy();
    let (vip_a, _) = tcp_service(&d, "rr", &[('A', 1)], &[]).await;
    let (vip_b, _) = tcp_service(&d, "rr", &[('B', 1)], &[]).await;
    let before = d.save();
    assert!(d.stop());
    let squatter = std::net::TcpListener::bind(vip_b).expect("take B's port");
    d.spawn();
    assert_eq!(d.save(), before, "-Ln is unchanged");
    assert_eq!(connect(vip_a).await.1, 'A', "A is served");
    let (code, health) = d.http("GET", "/v1/health", b"");
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let unrealised = health["unrealised"].as_array().unwrap();
    assert_eq!(unrealised.len(), 1, "{health}");
    assert!(
        unrealised[0]["error"]
            .as_str()
            .unwrap()
            .contains(&vip_b.to_string()),
        "{health}"
    );
    // A change to B meanwhile is taken (the table holds it) and reaches the plane later.
    let c = tcp_real(
        format!("127.0.10.77:{}", vip_b.port()).parse().unwrap(),
        'C',
    )
    .await;
    let o = d.ipvsadm(&["-a", "-t", &vip_b.to_string(), "-r", &c.to_string(), "-m"]);
    assert!(o.status.success(), "{}", err(&o));
    drop(squatter);
    let deadline = Instant::now() + STEP;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 && Instant::now() < deadline {
        let sock = TcpSocket::new_v4().unwrap();
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(2), sock.connect(vip_b)).await
        {
            let mut id = [0u8; 2];
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut id)).await
            {
                seen.insert(id[0] as char);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        seen,
        ['B', 'C'].into(),
        "B is served once its port is free, with both dests"
    );
    let (_, health) = d.http("GET", "/v1/health", b"");
    assert!(health.contains("\"unrealised\":[]"), "{health}");
}
