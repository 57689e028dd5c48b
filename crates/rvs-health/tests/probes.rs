//! The probes against real servers on loopback: nginx (Debian's) for http, listeners of the
//! test's own for tcp and for an answer that never comes. nginx missing: those tests say so
//! and pass (CI installs it).

use rvs_core::{CheckKind, CheckSpec, Health, Seconds};
use rvs_health::outcome::Code;
use rvs_health::probe;
use rvs_health::runner::{Checker, Event, ProbeKey, Watch};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on 127.0.0.1 serving `/index.html` ("Working Fine"), `/down` (503) and `/moved`
/// (302); killed by PID when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start() -> Option<Self> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        std::fs::write(dir.path().join("www/index.html"), "<p>Working Fine</p>\n").unwrap();
        let port = free_port();
        let conf = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;
             events {{}}
             http {{
               access_log off;
               client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
               uwsgi_temp_path {d}; scgi_temp_path {d};
               server {{
                 listen 127.0.0.1:{port};
                 root {d}/www;
                 location /down {{ return 503; }}
                 location /moved {{ return 302 /index.html; }}
               }}
             }}"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .spawn()
            .expect("nginx starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let n = Self {
            child,
            addr,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < until, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(n)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(path: &str) -> CheckSpec {
    CheckSpec {
        path: Some(path.to_owned()),
        timeout: Seconds(2000),
        ..CheckSpec::new(CheckKind::Http)
    }
}

async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event<&'static str>>,
) -> Event<&'static str> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the channel is open")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn http_checks_judge_nginx_by_status_body_and_digest() {
    let Some(nginx) = Nginx::start() else { return };
    let rt = runtime();
    let run = |spec: CheckSpec| rt.block_on(probe::run(&spec, nginx.addr));
    let ok = CheckSpec {
        receive: Some("Working Fine".into()),
        host: Some("www.example.com".into()),
        ..http("/index.html")
    };
    let o = run(ok.clone());
    assert_eq!(o.code, Code::L7Ok, "{o}");
    let o = run(CheckSpec {
        receive: Some("Not Here".into()),
        ..ok.clone()
    });
    assert_eq!(o.code, Code::L7Rsp, "{o}");
    let o = run(http("/down"));
    assert_eq!(
        (o.code, o.detail.as_str()),
        (Code::L7Sts, "status 503"),
        "{o}"
    );
    let o = run(http("/missing"));
    assert_eq!(o.code, Code::L7Sts, "{o}");
    // 3xx pass by default, as keepalived and ldirectord take them; not with status 200.
    assert_eq!(run(http("/moved")).code, Code::L7Ok);
    let o = run(CheckSpec {
        status: Some("200".into()),
        ..http("/moved")
    });
    assert_eq!(o.code, Code::L7Sts, "{o}");
    // md5("<p>Working Fine</p>\n"), computed by coreutils' md5sum.
    let md5 = String::from_utf8(
        Command::new("sh")
            .args(["-c", "printf '<p>Working Fine</p>\\n' | md5sum"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let digest = md5.split_whitespace().next().unwrap().to_owned();
    let o = run(CheckSpec {
        digest: Some(digest),
        ..http("/index.html")
    });
    assert_eq!(o.code, Code::L7Ok, "{o}");
    let o = run(CheckSpec {
        http_version: Some("1.0".into()),
        method: Some("HEAD".into()),
        ..http("/index.html")
    });
    assert_eq!(o.code, Code::L7Ok, "{o}");
}

#[test]
fn tcp_checks_tell_a_listener_from_a_closed_port() {
    let rt = runtime();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = CheckSpec::new(CheckKind::Tcp);
    let o = rt.block_on(probe::run(&spec, listener.local_addr().unwrap()));
    assert_eq!(o.code, Code::L4Ok, "{o}");
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let o = rt.block_on(probe::run(&spec, closed));
    assert_eq!(o.code, Code::L4Con, "{o}");
    assert!(o.detail.contains("refused"), "{o}");
}

#[test]
fn a_server_that_never_answers_is_given_up_at_the_timeout() {
    let rt = runtime();
    // Accepts (the kernel does, from its backlog) and never writes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = CheckSpec {
        timeout: Seconds(300),
        ..http("/")
    };
    let o = rt.block_on(probe::run(&spec, silent.local_addr().unwrap()));
    assert_eq!(o.code, Code::L7Tout, "{o}");
    // Bounded: abandoned at its timeout, not hung (generous for a loaded machine).
    assert!(o.duration < Duration::from_secs(5), "{o}");
}

#[test]
fn one_probe_serves_every_subscriber_and_reports_each_change_once() {
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            loop {
                if listener.accept().await.is_err() {
                    break;
                }
            }
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event<&'static str>>();
        let mut checker = Checker::new(tx);
        let key = ProbeKey {
            target: addr,
            spec: CheckSpec {
                interval: Seconds(50),
                timeout: Seconds(500),
                fall: 2,
                ..CheckSpec::new(CheckKind::Tcp)
            },
        };
        let watch = |s: &'static str| Watch {
            subscriber: s,
            key: key.clone(),
            initial: Health::Down,
        };
        checker.set_watches(vec![watch("vip-a"), watch("vip-b")]);
        assert_eq!(
            checker.len(),
            1,
            "the same check of the same address is one probe"
        );
        let up = next(&mut rx).await;
        let mut subs = up.subscribers.clone();
        subs.sort_unstable();
        assert_eq!((up.health, subs), (Health::Up, vec!["vip-a", "vip-b"]));
        // A third joins and hears the verdict at once; a fourth that already believes it does not.
        checker.set_watches(vec![
            watch("vip-a"),
            watch("vip-b"),
            watch("vip-c"),
            Watch {
                initial: Health::Up,
                ..watch("vip-d")
            },
        ]);
        let joined = next(&mut rx).await;
        assert_eq!(
            (joined.health, joined.subscribers),
            (Health::Up, vec!["vip-c"])
        );
        // The server dies: one down report, after `fall` failures.
        accept.abort();
        let _ = accept.await;
        let down = next(&mut rx).await;
        assert_eq!(down.health, Health::Down);
        assert_eq!(down.subscribers.len(), 4);
        assert_eq!(down.outcome.as_ref().map(|o| o.code), Some(Code::L4Con));
        let status = &checker.statuses()[0].2;
        assert_eq!(status.state, Health::Down);
        assert!(status.checks >= 3, "{status:?}");
        checker.set_watches(Vec::new());
        assert!(checker.is_empty());
    });
}
