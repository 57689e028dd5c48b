//! End-to-end: real rvsd processes driven by rvsadm through an `ipvsadm` symlink, running the
//! seeds' scripts, restarts, kill -9 under load, bad input, the TCP API and reloads.

mod common;

use common::{err, http_unix, out, Rvsd};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// The seeds' director.sh and NAT/DR/TUN lines, on test addresses (198.18.0.0/15).
const SEED_SCRIPT: &[&[&str]] = &[
    &["-C"],
    &["-A", "-t", "198.18.0.70:22", "-s", "rr"],
    &[
        "-a",
        "-t",
        "198.18.0.70:22",
        "-r",
        "198.18.5.1:22",
        "-m",
        "-w",
        "1",
    ],
    &[
        "-a",
        "-t",
        "198.18.0.70:22",
        "-r",
        "198.18.5.2:22",
        "-m",
        "-w",
        "1",
    ],
    &["-A", "-t", "198.18.0.148:80", "-s", "rr"],
    &["-A", "-t", "198.18.0.148:ssh", "-s", "rr"],
    &[
        "-a",
        "-t",
        "198.18.0.148:80",
        "-r",
        "198.18.0.145",
        "-i",
        "-w",
        "3",
    ],
    &[
        "-a",
        "-t",
        "198.18.0.148:ssh",
        "-r",
        "198.18.0.145",
        "-i",
        "-w",
        "3",
    ],
    &[
        "-a",
        "-t",
        "198.18.0.148:80",
        "-r",
        "198.18.0.151",
        "-i",
        "-w",
        "3",
    ],
    &["-A", "-t", "198.18.2.54:80", "-s", "rr"],
    &["-a", "-t", "198.18.2.54:80", "-r", "198.18.4.52:80", "-m"],
    &["-a", "-t", "198.18.2.54:80", "-r", "198.18.4.53:80", "-m"],
    &["-d", "-t", "198.18.2.54:80", "-r", "198.18.4.53"],
    &["-a", "-t", "198.18.2.54:80", "-r", "198.18.4.53", "-m"],
    &["-E", "-t", "198.18.2.54:80", "-s", "wrr"],
    &[
        "-e",
        "-t",
        "198.18.2.54:80",
        "-r",
        "198.18.4.53",
        "-w",
        "2",
        "-m",
    ],
    &["-A", "-t", "198.18.4.253:80", "-s", "rr"],
    &["-a", "-t", "198.18.4.253:80", "-r", "198.18.4.52:80", "-g"],
    &["-a", "-t", "198.18.4.253:80", "-r", "198.18.4.53:80", "-g"],
    &["-Z"],
];

const SEED_SAVE: &str = "\
-A -t 198.18.0.70:22 -s rr
-a -t 198.18.0.70:22 -r 198.18.5.1:22 -m -w 1
-a -t 198.18.0.70:22 -r 198.18.5.2:22 -m -w 1
-A -t 198.18.0.148:22 -s rr
-a -t 198.18.0.148:22 -r 198.18.0.145:22 -i -w 3 --tun-type ipip
-A -t 198.18.0.148:80 -s rr
-a -t 198.18.0.148:80 -r 198.18.0.145:80 -i -w 3 --tun-type ipip
-a -t 198.18.0.148:80 -r 198.18.0.151:80 -i -w 3 --tun-type ipip
-A -t 198.18.2.54:80 -s wrr
-a -t 198.18.2.54:80 -r 198.18.4.52:80 -m -w 1
-a -t 198.18.2.54:80 -r 198.18.4.53:80 -m -w 2
-A -t 198.18.4.253:80 -s rr
-a -t 198.18.4.253:80 -r 198.18.4.52:80 -g -w 1
-a -t 198.18.4.253:80 -r 198.18.4.53:80 -g -w 1
";

fn run_seed(d: &Rvsd) {
    for line in SEED_SCRIPT {
        let o = d.ipvsadm(line);
        assert!(o.status.success(), "ipvsadm {line:?}: {}", err(&o));
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "{line:?} printed something"
        );
    }
}

#[test]
fn the_seeds_scripts_run_unchanged_through_an_ipvsadm_symlink() {
    let d = Rvsd::start(&[]);
    run_seed(&d);
    assert_eq!(d.save(), SEED_SAVE);
    let list = out(&d.ipvsadm(&["-L", "-n"]));
    assert!(list.starts_with(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
    ));
    assert!(list.contains("TCP  198.18.2.54:80 wrr\n  -> 198.18.4.52:80               Masq    1      0          0         \n"), "{list}");
    // Save, clear, restore, compare.
    let saved = d.save();
    assert!(d.ipvsadm(&["-C"]).status.success());
    assert_eq!(d.save(), "");
    let o = d.ipvsadm_stdin(&["-R"], saved.as_bytes());
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(d.save(), SEED_SAVE);
}

#[test]
fn a_restarted_rvsd_restores_the_identical_table() {
    let mut d = Rvsd::start(&[]);
    run_seed(&d);
    assert!(d.ipvsadm(&["--set", "600", "60", "200"]).status.success());
    assert!(d
        .ipvsadm(&[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "lo",
            "--syncid",
            "9"
        ])
        .status
        .success());
    let before = (
        d.save(),
        out(&d.ipvsadm(&["-L", "--timeout"])),
        out(&d.ipvsadm(&["-L", "--daemon"])),
    );
    assert!(d.stop(), "SIGTERM stops rvsd cleanly");
    assert!(!d.socket.exists(), "the socket is removed on exit");
    d.spawn();
    let after = (
        d.save(),
        out(&d.ipvsadm(&["-L", "--timeout"])),
        out(&d.ipvsadm(&["-L", "--daemon"])),
    );
    assert_eq!(before, after);
    assert_eq!(after.1, "Timeout (tcp tcpfin udp): 600 60 200\n");
    // The kernel's defaults are filled in, as it reports them.
    assert_eq!(
        after.2,
        "master sync daemon (mcast=lo, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
}

#[test]
fn rvsadm_json_lists_the_table_wherever_it_stands_and_only_with_list() {
    let d = Rvsd::start(&[]);
    assert!(d.ipvsadm(&["-A", "-t", "198.18.0.9:80"]).status.success());
    for args in [
        &["--json", "-L"][..],
        &["-Ln", "--json"],
        &["--list", "--json", "-n"],
    ] {
        let o = d.ipvsadm(args);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
        assert_eq!(v["services"].as_array().unwrap().len(), 1, "{args:?}");
    }
    let before = d.save();
    let o = d.ipvsadm(&["-A", "-t", "198.18.0.10:80", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--json goes with -L"), "{}", err(&o));
    assert_eq!(d.save(), before, "nothing was added");
}

#[test]
fn sync_daemons_get_the_kernels_defaults_and_need_their_interface() {
    let d = Rvsd::start(&[]);
    let o = d.ipvsadm(&[
        "--start-daemon",
        "backup",
        "--mcast-interface",
        "lo",
        "--mcast-group",
        "ff02::1234",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = d.ipvsadm(&[
        "--start-daemon",
        "master",
        "--mcast-interface",
        "rvs-no-such0",
    ]);
    assert_eq!(
        (err(&o).as_str(), o.status.code()),
        ("No such device\n", Some(255))
    );
    // A backup's maxlen follows its interface's MTU (lo: 65536, clamped to 65535), less the
    // IPv6 and UDP headers; an explicit one is clamped the same way.
    assert_eq!(
        out(&d.ipvsadm(&["-L", "--daemon"])),
        "backup sync daemon (mcast=lo, syncid=0, maxlen=65487, group=ff02::1234, port=8848, ttl=1)\n"
    );
}

#[test]
fn kill_9_during_a_stream_of_changes_never_loses_an_acknowledged_change() {
    kill_9_rounds(Rvsd::start(&[]), 12);
}

/// The same while the journal is compacted every few changes, so kills land in the middle of
/// compactions (a snapshot being written, journals being rotated and deleted).
#[test]
fn kill_9_in_the_middle_of_compactions_never_loses_an_acknowledged_change() {
    let mut d = Rvsd::start(&[]);
    d.kill9();
    d.env.push(("RVS_COMPACT_EVERY".to_owned(), "3".to_owned()));
    d.spawn();
    kill_9_rounds(d, 10);
}

fn kill_9_rounds(mut d: Rvsd, rounds: u64) {
    let mut acknowledged: Vec<String> = Vec::new();
    let mut next = 0u32;
    for round in 0..rounds {
        // A writer adds services one by one until rvsd dies under it.
        let socket = d.socket.clone();
        let dir = d.dir.clone();
        let start = next;
        let writer = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            for n in start..start + 500 {
                if Instant::now() > deadline {
                    break;
                }
                let vip = format!("198.18.{}.{}:80", n / 250, n % 250 + 1);
                let o = common::ipvsadm_at(&dir, &socket, &["-A", "-t", &vip, "-s", "rr"], b"");
                if !o.status.success() {
                    break;
                }
                acked.push(vip);
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(60 + round * 23));
        d.kill9();
        let acked = writer.join().unwrap();
        next += 500;
        acknowledged.extend(acked);
        d.spawn();
        let saved = d.save();
        for vip in &acknowledged {
            assert!(
                saved.contains(&format!("-A -t {vip} -s rr\n")),
                "round {round}: acknowledged {vip} was lost"
            );
        }
        let lines = saved.lines().count();
        assert!(
            lines <= acknowledged.len() + round as usize + 1,
            "round {round}: more services than were sent"
        );
    }
    assert!(
        acknowledged.len() > 12,
        "the writers got changes through ({})",
        acknowledged.len()
    );
    // The journal does not grow without bound when compactions run.
    let journals = std::fs::read_dir(&d.state_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("rvs-journal."))
        })
        .count();
    assert!(journals <= rounds as usize + 2, "{journals} journal files");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let d = Rvsd::start(&[]);
    run_seed(&d);
    let before = d.save();
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["-A", "-t", "198.18.9.9:80", "--bogus"],
            "--bogus: unknown option\n",
            255,
        ),
        (
            &["-A", "-t", "not-an-address:80"],
            "illegal virtual server address[:port] specified\n",
            2,
        ),
        (
            &[
                "-a",
                "-t",
                "198.18.2.54:80",
                "-r",
                "198.18.4.99",
                "-w",
                "70000",
            ],
            "illegal weight specified\n",
            2,
        ),
        (
            &["-a", "-t", "198.18.2.54:80", "-r", "198.18.4.52", "-m"],
            "Destination already exists\n",
            255,
        ),
        (&["-D", "-t", "198.18.9.9:80"], "No such service\n", 255),
    ];
    for (args, stderr, code) in cases {
        let o = d.ipvsadm(args);
        assert_eq!(
            (err(&o).as_str(), o.status.code().unwrap()),
            (*stderr, *code),
            "{args:?}"
        );
    }
    // Garbage on -R: a good first line, a bad second one; nothing is applied.
    let o = d.ipvsadm_stdin(
        &["-R"],
        b"-A -t 198.18.9.1:80 -s rr\n-a -t 198.18.9.1:80 -r 198.18.9.2 -w lots\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).starts_with("illegal weight specified\nrestore: line 2 "),
        "{}",
        err(&o)
    );
    // A batch refused by the table names the line too.
    let o = d.ipvsadm_stdin(&["-R"], b"-A -t 198.18.9.1:80\n-A -t 198.18.0.70:22\n");
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).starts_with("Service already exists\nrestore: line 2 "),
        "{}",
        err(&o)
    );
    // Malformed API requests.
    let (code, body) = d.http("POST", "/v1/commands", b"{\"command\":\"add_service\",");
    assert_eq!(code, 400);
    assert!(
        body.contains("\"kind\":\"bad_request\"") && body.contains("not a valid command"),
        "{body}"
    );
    let (code, body) = d.http("POST", "/v1/commands", b"{\"command\":\"add_dest\",\"service\":{\"kind\":\"inet\",\"protocol\":\"tcp\",\"addr\":\"198.18.2.54:80\"},\"dest\":{\"addr\":\"198.18.4.60:80\",\"forward\":{\"method\":\"masq\"},\"weight\":99999}}");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("weight 99999 is outside 0..=65535"), "{body}");
    let (code, body) = d.http("GET", "/v2/table", b"");
    assert_eq!(code, 404);
    assert!(body.contains("no such endpoint"), "{body}");
    assert_eq!(d.save(), before, "no bad input changed the table");
}

/// Every refusal of the API is an ApiError JSON body with a status that says what is wrong,
/// whether axum, hyper or rvs's own checks refuse it.
#[test]
fn every_api_error_is_an_api_error_json_body() {
    let d = Rvsd::start(&[]);
    let o = d.ipvsadm(&["-A", "-t", "198.18.2.54:80"]);
    assert!(o.status.success(), "{}", err(&o));
    let before = d.save();
    let json = |body: &str| -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
    };
    let kind = |body: &str| json(body)["kind"].as_str().unwrap_or_default().to_owned();
    // A method the route does not take.
    let (code, body) = d.http("DELETE", "/v1/table", b"");
    assert_eq!(
        (code, kind(&body).as_str()),
        (405, "method_not_allowed"),
        "{body}"
    );
    assert!(body.contains("it takes GET"), "{body}");
    // An unknown route.
    let (code, body) = d.http("GET", "/nowhere", b"");
    assert_eq!((code, kind(&body).as_str()), (404, "not_found"), "{body}");
    // An unknown field is refused, not ignored: "schedular" must not make a wlc service.
    let (code, body) = d.http(
        "POST",
        "/v1/commands",
        br#"{"command":"add_service","key":{"kind":"inet","protocol":"tcp","addr":"198.18.2.55:80"},"schedular":"wrr"}"#,
    );
    assert_eq!((code, kind(&body).as_str()), (400, "bad_request"), "{body}");
    assert!(body.contains("unknown field `schedular`"), "{body}");
    // A body announced larger than the limit is refused before it is read.
    let (code, body) = raw(
        &d,
        b"POST /v1/commands HTTP/1.1\r\nHost: rvsd\r\nContent-Length: 9999999999\r\n\r\n",
    );
    assert_eq!((code, kind(&body).as_str()), (413, "bad_request"), "{body}");
    // Not HTTP at all, too many headers, a head that never ends.
    let (code, body) = raw(&d, b"\x16\x03\x01 hello\r\n\r\n");
    assert_eq!((code, kind(&body).as_str()), (400, "bad_request"), "{body}");
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    let (code, body) = raw(
        &d,
        format!("GET /v1/table HTTP/1.1\r\n{many}\r\n").as_bytes(),
    );
    assert_eq!((code, kind(&body).as_str()), (431, "bad_request"), "{body}");
    let (code, body) = raw(
        &d,
        format!("GET /v1/table HTTP/1.1\r\nX: {}", "a".repeat(70_000)).as_bytes(),
    );
    assert_eq!((code, kind(&body).as_str()), (431, "bad_request"), "{body}");
    assert_eq!(d.save(), before, "nothing refused changed the table");
}

/// One raw exchange on the control socket: what is sent is exactly `request`.
fn raw(d: &Rvsd, request: &[u8]) -> (u16, String) {
    common::http_raw(&d.socket, request)
}

/// Idle and half-sent connections cannot exhaust rvsd: under a 256-descriptor limit, 300
/// connections that send nothing (to the TCP API, before any token check, and to the control
/// socket) neither stop rvsadm nor the VIPs, and rvsd closes them after its head timeout.
#[test]
fn idle_connections_cannot_exhaust_the_daemon() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prlimit (util-linux) is missing");
        return;
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api_port, vip_port, real_port) = (free(), free(), free());
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut d = Rvsd::start_raw(&[]);
    d.kill9();
    // The same rvsd, under prlimit.
    let api = format!("127.0.0.1:{api_port}");
    let child = std::process::Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg(common::rvsd_bin())
        .args(["--dataplane", "proxy", "--workers", "1", "--state-dir"])
        .arg(&d.state_dir)
        .arg("--control")
        .arg(&d.socket)
        .args(["--api", &api, "--api-token-file"])
        .arg(&token)
        .env("RVS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
        assert!(Instant::now() < deadline, "rvsd came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.child = Some(child);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let real = std::net::TcpListener::bind(("127.0.0.1", real_port)).unwrap();
    let vip = format!("127.0.0.1:{vip_port}");
    for args in [
        vec!["-A", "-t", vip.as_str()],
        vec![
            "-a",
            "-t",
            vip.as_str(),
            "-r",
            &format!("127.0.0.1:{real_port}"),
            "-m",
        ],
    ] {
        let o = d.ipvsadm(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = std::net::TcpStream::connect(&api) {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            idle.push(Box::new(s) as Box<dyn std::io::Read>);
        }
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&d.socket) {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            idle.push(Box::new(s));
        }
    }
    // rvsadm still gets its answer (retrying while the control socket is at its cap).
    let o = d.ipvsadm(&["-Ln"]);
    assert!(o.status.success(), "{limits}\n{}", err(&o));
    assert!(out(&o).contains(&vip), "{}", out(&o));
    // The VIP still accepts and relays.
    let client = std::net::TcpStream::connect(&vip).expect("the VIP accepts");
    real.set_nonblocking(false).unwrap();
    let (_relayed, _) = real.accept().expect("the proxy reached the real server");
    drop(client);
    // The idle ones are closed by rvsd: each read ends (408, 503 or EOF) in bounded time.
    for mut s in idle {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "idle connections were closed by rvsd's head timeout"
    );
}

#[test]
fn the_control_socket_is_private_and_a_missing_rvsd_is_reported() {
    let mut d = Rvsd::start(&[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second rvsd on the same socket (with a state directory of its own) refuses to start.
    let other_state = d.dir.join("other-state");
    let o = std::process::Command::new(common::rvsd_bin())
        .args(["--dataplane", "none", "--state-dir"])
        .arg(&other_state)
        .arg("--control")
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        err(&o).contains("another rvsd is already listening"),
        "{}",
        err(&o)
    );
    d.stop();
    let o = d.ipvsadm(&["-Ln"]);
    assert_eq!(o.status.code(), Some(2));
    let e = err(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("rvsd is not running"), "{e}");
}

#[test]
fn a_second_rvsd_on_the_same_state_dir_stops_before_it_binds_a_vip() {
    let vip = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let d = Rvsd::start_raw(&["--dataplane", "proxy"]);
    let o = d.ipvsadm(&["-A", "-t", &vip]);
    assert!(o.status.success(), "{}", err(&o));
    let before = d.save();
    let pid = d.child.as_ref().unwrap().id();
    // Same state directory, another control socket: refused on the lock, naming the holder.
    let o = std::process::Command::new(common::rvsd_bin())
        .args(["--dataplane", "proxy", "--state-dir"])
        .arg(&d.state_dir)
        .arg("--control")
        .arg(d.dir.join("second.sock"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("is in use by another rvsd") && e.contains(&format!("pid {pid}")),
        "{e}"
    );
    assert!(!d.dir.join("second.sock").exists(), "it bound nothing");
    // The first one still owns the VIP alone: every connection reaches its listener (a
    // second listener on the port would be one of two SO_REUSEPORT sockets).
    for _ in 0..20 {
        std::net::TcpStream::connect(&vip).expect("the first rvsd still listens");
    }
    assert_eq!(d.save(), before);
}

#[test]
fn control_names_a_regular_file_which_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("precious");
    std::fs::write(&file, b"keep me").unwrap();
    let o = std::process::Command::new(common::rvsd_bin())
        .args(["--dataplane", "none", "--state-dir"])
        .arg(tmp.path().join("state"))
        .arg("--control")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("is not a socket"), "{}", err(&o));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// A table of 11,000 dests survives save, clear and restore (its restore is a request body
/// of several megabytes).
#[test]
fn a_large_table_saves_clears_and_restores() {
    let d = Rvsd::start(&[]);
    let mut script = String::new();
    for s in 0..110u32 {
        let vip = format!("198.18.{}.{}:80", 100 + s / 200, s % 200 + 1);
        script.push_str(&format!("-A -t {vip} -s wrr\n"));
        for r in 0..100u32 {
            script.push_str(&format!(
                "-a -t {vip} -r 198.19.{}.{}:8080 -m -w {}\n",
                r / 250,
                r % 250 + 1,
                r % 7 + 1
            ));
        }
    }
    let o = d.ipvsadm_stdin(&["-R"], script.as_bytes());
    assert!(o.status.success(), "{}", err(&o));
    let saved = d.save();
    assert_eq!(saved.lines().count(), 110 + 11_000);
    let o = d.ipvsadm(&["-C"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(d.save(), "");
    let o = d.ipvsadm_stdin(&["-R"], saved.as_bytes());
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(d.save(), saved);
}

#[test]
fn rvsadm_gives_up_on_a_stopped_rvsd_and_takes_any_bytes() {
    let d = Rvsd::start(&[]);
    // Bytes that are not UTF-8 are an address ipvsadm cannot resolve, not a panic.
    let _ = d.ipvsadm(&["-v"]); // makes the ipvsadm symlink
    let o = std::process::Command::new(d.dir.join("ipvsadm"))
        .arg("-L")
        .arg("-t")
        .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff"))
        .env("RVS_SOCKET", &d.socket)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
    // A stopped rvsd (SIGSTOP): the connection is taken by the kernel, nothing answers.
    d.signal("STOP");
    let started = Instant::now();
    let o = std::process::Command::new(d.dir.join("ipvsadm"))
        .arg("-Ln")
        .env("RVS_SOCKET", &d.socket)
        .env("RVS_TIMEOUT", "1")
        .output()
        .unwrap();
    let waited = started.elapsed();
    d.signal("CONT");
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("did not answer within 1 s"), "{}", err(&o));
    assert!(waited < Duration::from_secs(10), "gave up after {waited:?}");
    assert!(
        d.ipvsadm(&["-Ln"]).status.success(),
        "answers again after SIGCONT"
    );
}

#[test]
fn the_tcp_api_requires_the_bearer_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let addr = format!("127.0.0.1:{port}");
    let d = Rvsd::start(&[
        "--api",
        &addr,
        "--api-token-file",
        token_file.to_str().unwrap(),
    ]);
    let get = |auth: Option<&str>| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let auth = auth
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /v1/health HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    assert!(get(None).starts_with("HTTP/1.1 401"));
    assert!(get(Some("Bearer wrong")).starts_with("HTTP/1.1 401"));
    assert!(get(Some("Basic s3cret")).starts_with("HTTP/1.1 401"));
    // The scheme's case does not matter (RFC 9110); the token's does.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let ok = get(Some(&format!("{scheme} s3cret")));
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.contains("\"dataplane\":\"none\""),
            "{scheme}: {ok}"
        );
    }
    assert!(get(Some("Bearer S3CRET")).starts_with("HTTP/1.1 401"));
    drop(d);
    // --api without a token file refuses to start.
    let tmp2 = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(common::rvsd_bin())
        .args([
            "--state-dir",
            tmp2.path().join("s").to_str().unwrap(),
            "--control",
            tmp2.path().join("c.sock").to_str().unwrap(),
            "--api",
            &addr,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        err(&o).contains("--api needs --api-token-file"),
        "{}",
        err(&o)
    );
}

#[test]
fn sighup_applies_only_the_difference_of_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("rvs.toml");
    let v1 = "[[service]]\ntcp = \"198.18.0.1:80\"\nscheduler = \"rr\"\n[[service.real]]\naddr = \"198.18.1.1:8080\"\nforward = \"masq\"\n[[service.real]]\naddr = \"198.18.1.2:8080\"\nforward = \"masq\"\n\n[[service]]\nudp = \"198.18.0.1:53\"\n[[service.real]]\naddr = \"198.18.1.3\"\nforward = \"masq\"\n";
    std::fs::write(&cfg, v1).unwrap();
    let d = Rvsd::start(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(
        d.save(),
        "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1\n-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m -w 1\n-A -u 198.18.0.1:53 -s wlc\n-a -u 198.18.0.1:53 -r 198.18.1.3:53 -m -w 1\n"
    );
    // A weight change and a removed service: the reload reports exactly those changes.
    let v2 = v1.replace(
        "addr = \"198.18.1.2:8080\"\nforward = \"masq\"\n",
        "addr = \"198.18.1.2:8080\"\nforward = \"masq\"\nweight = 5\n",
    );
    let v2 = &v2[..v2.find("\n[[service]]\nudp").unwrap() + 1];
    std::fs::write(&cfg, v2).unwrap();
    let (code, body) = d.http("POST", "/v1/reload", b"");
    assert_eq!(code, 200, "{body}");
    let changes: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["service_removed", "dest_edited"]);
    // SIGHUP does the same; a broken config is refused and nothing changes.
    std::fs::write(
        &cfg,
        "[[service]]\ntcp = \"198.18.0.1:80\"\nscheduler = \"fastest\"\n",
    )
    .unwrap();
    let before = d.save();
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.save(), before);
    std::fs::write(&cfg, v1).unwrap();
    d.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.save().lines().count() != 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.save().contains("-A -u 198.18.0.1:53 -s wlc\n"));
}

/// A state file written by format version 1 (testdata/state/v1.json) keeps loading, to the
/// same table (v1.saved: its -Sn, timeouts and daemons).
#[test]
fn a_version_1_state_file_keeps_loading() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/state");
    let mut d = Rvsd::start(&[]);
    d.kill9();
    std::fs::copy(testdata.join("v1.json"), d.state_dir.join("rvs-state.json")).unwrap();
    d.spawn();
    let listed = format!(
        "{}{}{}",
        d.save(),
        out(&d.ipvsadm(&["-L", "--timeout"])),
        out(&d.ipvsadm(&["-L", "--daemon"]))
    );
    assert_eq!(
        listed,
        std::fs::read_to_string(testdata.join("v1.saved")).unwrap()
    );
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_untouched() {
    let mut d = Rvsd::start(&[]);
    run_seed(&d);
    // The changes are in the journal; a restart folds them into the snapshot.
    d.stop();
    d.spawn();
    d.stop();
    let file = d.state_dir.join("rvs-state.json");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&file, &bytes).unwrap();
    let o = d.command().output().unwrap();
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("is corrupt") && e.contains("rvs-state.json") && e.contains("left untouched"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the corrupt file was not touched"
    );
    let _ = http_unix; // used by other tests
}

#[test]
fn a_corrupt_journal_is_refused_and_left_untouched() {
    let mut d = Rvsd::start(&[]);
    run_seed(&d);
    d.stop();
    let journal = std::fs::read_dir(&d.state_dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("rvs-journal."))
        .expect("the seeds' changes are in a journal")
        .path();
    let text = std::fs::read_to_string(&journal).unwrap();
    let broken = text.replacen("\"command\"", "\"commandz\"", 1);
    std::fs::write(&journal, &broken).unwrap();
    let o = d.command().output().unwrap();
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("is corrupt") && e.contains("rvs-journal.") && e.contains("line 1"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), broken);
}
