//! The XDP plane in network namespaces shaped like the seeds' direct-routing cluster: a client,
//! a director and three real servers on one bridge (198.18.0.0/24), the VIP on the director's
//! interface and on the real servers' loopbacks (arp_ignore=1, arp_announce=2). Real HTTP goes
//! through the VIP; some tests do it over IPv6 (2001:db8::/64 on the same bridge). Needs root;
//! skipped with a message otherwise. Every namespace and process is removed afterwards, on
//! failure too.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "198.18.0.100";
const VIP6: &str = "2001:db8::100";
/// The real servers' namespaces.
const RS: [&str; 3] = ["rs1", "rs2", "rs3"];
/// Their addresses on the shared bridge, on IPv6, and behind a NAT director.
const REALS: [&str; 3] = ["198.18.0.11", "198.18.0.12", "198.18.0.13"];
const REALS6: [&str; 3] = ["2001:db8::11", "2001:db8::12", "2001:db8::13"];
const REALS_NAT: [&str; 3] = ["198.18.1.11", "198.18.1.12", "198.18.1.13"];
const REALS_NAT6: [&str; 3] = ["2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"];

/// `ip:port`, with brackets around IPv6 addresses.
fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ns_out(ns: &str, args: &[&str]) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The namespaces and processes of one test; removed on drop.
struct Lab {
    prefix: String,
    procs: Vec<Child>,
    /// The virtual address the client connects to, and the client's own address.
    vip: &'static str,
    client: &'static str,
    /// The director's interfaces rvsd runs on.
    director_ifs: Vec<&'static str>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The topology; with `manual_real_servers`, the VIP and ARP sysctls are set by hand as the
    /// seeds do, otherwise `rvsd realserver` will do it.
    fn new(tag: &str, manual_real_servers: bool) -> Self {
        let lab = Self {
            prefix: format!("rvs-{tag}-{}", std::process::id()),
            procs: Vec::new(),
            vip: VIP,
            client: "198.18.0.10",
            director_ifs: vec!["eth0"],
        };
        let sw = lab.ns("sw");
        sh(&["ip", "netns", "add", &sw]);
        sh(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for (name, addr) in [
            ("cl", "198.18.0.10"),
            ("dir", "198.18.0.1"),
            ("rs1", "198.18.0.11"),
            ("rs2", "198.18.0.12"),
            ("rs3", "198.18.0.13"),
        ] {
            let ns = lab.ns(name);
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip",
                "-n",
                &sw,
                "link",
                "add",
                &format!("p-{name}"),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ]);
            sh(&[
                "ip",
                "-n",
                &sw,
                "link",
                "set",
                &format!("p-{name}"),
                "master",
                "br0",
                "up",
            ]);
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &lab.ns("dir"),
            "addr",
            "add",
            &format!("{VIP}/32"),
            "dev",
            "eth0",
        ]);
        for rs in RS.into_iter().filter(|_| manual_real_servers) {
            let ns = lab.ns(rs);
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{VIP}/32"),
                "dev",
                "lo",
            ]);
            for (k, v) in [
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                ("net.ipv4.conf.eth0.arp_ignore", "1"),
                ("net.ipv4.conf.eth0.arp_announce", "2"),
            ] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    &format!("{k}={v}"),
                ]);
            }
        }
        lab
    }

    /// The same topology with IPv6 addresses too (without duplicate address detection, so
    /// they work at once): the client talks to the IPv6 VIP, which the real servers hold on lo
    /// (IPv6 answers neighbour solicitations only for addresses on the asking interface, so no
    /// sysctl is needed).
    fn new6(tag: &str) -> Self {
        let mut lab = Self::new(tag, false);
        for (name, addr) in [
            ("cl", "2001:db8::10/64"),
            ("dir", "2001:db8::1/64"),
            ("dir", "2001:db8::100/128"),
            ("rs1", "2001:db8::11/64"),
            ("rs2", "2001:db8::12/64"),
            ("rs3", "2001:db8::13/64"),
        ] {
            sh(&[
                "ip",
                "-n",
                &lab.ns(name),
                "addr",
                "add",
                addr,
                "dev",
                "eth0",
                "nodad",
            ]);
        }
        for rs in RS {
            sh(&[
                "ip",
                "-n",
                &lab.ns(rs),
                "addr",
                "add",
                "2001:db8::100/128",
                "dev",
                "lo",
            ]);
        }
        lab.vip = VIP6;
        lab.client = "2001:db8::10";
        lab
    }

    /// A second arm for the director: its eth1 (198.18.1.1/24) on a bridge of its own, br1,
    /// where the real servers move; forwarding on, as a two-armed director has it.
    fn second_arm(&self) {
        let (sw, dir) = (self.ns("sw"), self.ns("dir"));
        sh(&["ip", "-n", &sw, "link", "add", "br1", "type", "bridge"]);
        sh(&["ip", "-n", &sw, "link", "set", "br1", "up"]);
        sh(&[
            "ip", "-n", &sw, "link", "add", "p-dir1", "type", "veth", "peer", "name", "eth1",
            "netns", &dir,
        ]);
        sh(&[
            "ip", "-n", &sw, "link", "set", "p-dir1", "master", "br1", "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &dir,
            "addr",
            "add",
            "198.18.1.1/24",
            "dev",
            "eth1",
        ]);
        sh(&["ip", "-n", &dir, "link", "set", "eth1", "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &dir,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        for rs in RS {
            let ns = self.ns(rs);
            sh(&[
                "ip",
                "-n",
                &sw,
                "link",
                "set",
                &format!("p-{rs}"),
                "master",
                "br1",
            ]);
            // veth hands over 64 KiB TCP segments whole; a generic-mode XDP redirect refuses
            // frames above the egress MTU, as a NIC never delivers them. Real-sized frames, then.
            sh(&[
                "ip", "netns", "exec", &ns, "ethtool", "-K", "eth0", "tso", "off", "gso", "off",
            ]);
        }
    }

    /// Moves the real servers to REALS_NAT (198.18.1.0/24), routed through the director (198.18.1.1),
    /// as NAT needs them.
    fn real_servers_behind_the_director(&self) {
        for (rs, real) in RS.iter().zip(REALS_NAT) {
            let ns = self.ns(rs);
            let addr = format!("{real}/24");
            sh(&["ip", "-n", &ns, "addr", "flush", "dev", "eth0"]);
            sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            sh(&[
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                "198.18.1.1",
            ]);
        }
    }

    /// Starts a process in a namespace, its output to `log`; it is killed (by its PID) when the
    /// lab drops.
    fn spawn(&mut self, ns: &str, args: &[&str], log: &std::path::Path) {
        let out = std::fs::File::create(log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .env("RVS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawn");
        self.procs.push(child);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        for name in ["cl", "dir", "rs1", "rs2", "rs3", "sw"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(name)])
                .status();
        }
    }
}

/// Fetches http://VIP/PATH from the client namespace with a given source port: the body.
fn get(lab: &Lab, path: &str, sport: u16) -> Option<Vec<u8>> {
    let (vip, client) = (lab.vip, lab.client);
    let script = format!(
        "import socket,sys\ns=socket.create_connection(('{vip}',80),5,('{client}',{sport}))\ns.sendall(b'GET /{path} HTTP/1.0\\r\\n\\r\\n')\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nsys.stdout.buffer.write(b.split(b'\\r\\n\\r\\n',1)[1])\n"
    );
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("cl"),
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .output()
        .ok()?;
    o.status.success().then_some(o.stdout)
}

fn can_run() -> bool {
    if !is_root() {
        eprintln!("skipped: network namespaces and XDP need root");
        return false;
    }
    if let Err(e) = rvs_xdp::object() {
        eprintln!("skipped: {e}");
        return false;
    }
    true
}

/// Real servers `rs1`, `rs2` and `rs3` serve their name and a 1 MiB file on port 80; the director runs
/// rvsd with the xdp plane and a service on the VIP with all three as `method` dests; HTTP from the
/// client through the VIP must reach each in turn and carry the big file intact.
fn scenario(lab: &mut Lab, method: &str, reals: [&str; 3], tmp: &std::path::Path) {
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for rs in RS {
        let dir = tmp.join(rs);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), rs).unwrap();
        std::fs::write(dir.join("big"), &big).unwrap();
        let log = tmp.join(format!("{rs}.log"));
        lab.spawn(
            rs,
            &[
                "/usr/bin/python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                if lab.vip.contains(':') {
                    "::"
                } else {
                    "0.0.0.0"
                },
                "--directory",
                dir.to_str().unwrap(),
            ],
            &log,
        );
    }
    // Nothing is resolved before rvsd starts: the director's neighbour tables are empty,
    // as on a freshly booted director, and the plane must resolve every next hop itself.
    for family in ["-4", "-6"] {
        let table = ns_out(&lab.ns("dir"), &["ip", family, "neigh", "show"]);
        assert!(table.trim().is_empty(), "a clean neighbour table: {table}");
    }
    let socket = tmp.join("rvsd.sock");
    let log = tmp.join("rvsd.log");
    let rvsd = common::rvsd_bin();
    let state = tmp.join("state");
    let mut args = vec![rvsd.to_str().unwrap(), "--dataplane", "xdp"];
    for interface in lab.director_ifs.clone() {
        args.extend(["--interface", interface]);
    }
    args.extend([
        "--xdp-mode",
        "generic",
        "--state-dir",
        state.to_str().unwrap(),
        "--control",
        socket.to_str().unwrap(),
    ]);
    lab.spawn("dir", &args, &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "rvsd with the xdp plane did not come up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let adm = |args: &[&str]| {
        let o = common::ipvsadm_at(tmp, &socket, args, b"");
        assert!(o.status.success(), "ipvsadm {args:?}: {}", common::err(&o));
    };
    let service = host_port(lab.vip, 80);
    adm(&["-A", "-t", &service, "-s", "rr"]);
    for real in reals {
        let rs = host_port(real, 80);
        let mut args = vec!["-a", "-t", &service, "-r", &rs];
        args.extend(method.split_whitespace());
        adm(&args);
    }
    // Wait for the real servers to listen, then spread requests over source ports.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::HashSet::new();
    let mut port = 20_000u16;
    while seen.len() < 3 && Instant::now() < deadline {
        if let Some(body) = get(lab, "name", port) {
            seen.insert(String::from_utf8_lossy(&body).into_owned());
        }
        port += 1;
    }
    if seen.len() < 3 {
        let logs: Vec<String> = ["rs1-prep.log", "rs2-prep.log", "rs3-prep.log", "rvsd.log"]
            .iter()
            .map(|f| {
                format!(
                    "{f}: {}",
                    std::fs::read_to_string(tmp.join(f)).unwrap_or_default()
                )
            })
            .collect();
        let snmp = ns_out(&lab.ns("rs1"), &["cat", "/proc/net/snmp"]);
        panic!("every real server answered through the VIP ({method}): {seen:?}\n{}\nrs1 snmp:\n{snmp}", logs.join("\n"));
    }
    // rr at packet level: consecutive new flows take the real servers in turn.
    let mut shares = std::collections::HashMap::<String, u32>::new();
    for p in 0..30 {
        let body = get(lab, "name", 25_000 + p).expect("an answer through the VIP");
        *shares
            .entry(String::from_utf8_lossy(&body).into_owned())
            .or_default() += 1;
    }
    assert_eq!(
        shares.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "rr gives each real server its share: {shares:?}"
    );
    let body = get(lab, "big", 30_000).expect("the big file through the VIP");
    assert!(
        body == big,
        "1 MiB through the VIP arrives intact ({} bytes)",
        body.len()
    );
    let stats = common::out(&common::ipvsadm_at(tmp, &socket, &["-Ln", "--stats"], b""));
    assert!(
        reals.iter().all(|r| stats.contains(&host_port(r, 80))),
        "{stats}"
    );
}

#[test]
fn direct_routing_through_xdp_serves_http_from_every_real_server() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dr", true);
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-g", REALS, tmp.path());
}

#[test]
fn ipv6_direct_routing_through_xdp_serves_http_from_every_real_server() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new6("dr6");
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-g", REALS6, tmp.path());
    let conns = common::out(&common::ipvsadm_at(
        tmp.path(),
        &tmp.path().join("rvsd.sock"),
        &["-Lnc"],
        b"",
    ));
    assert!(
        conns.contains("[2001:db8::10]:") && conns.contains("[2001:db8::100]:80"),
        "-Lnc lists the IPv6 connections:\n{conns}"
    );
}

/// `rvsd realserver --mode MODE` (with `extra` arguments) on every real server; returns once
/// each says it is ready.
fn prepare_real_servers(lab: &mut Lab, mode: &str, extra: &[&str], tmp: &std::path::Path) {
    let vip = lab.vip;
    for rs in RS {
        let log = tmp.join(format!("{rs}-prep.log"));
        let rvsd = common::rvsd_bin();
        let mut args = vec![
            rvsd.to_str().unwrap(),
            "realserver",
            "--vip",
            vip,
            "--mode",
            mode,
            "--interface",
            "eth0",
        ];
        args.extend_from_slice(extra);
        lab.spawn(rs, &args, &log);
    }
    let prepared = |rs: &str| {
        std::fs::read_to_string(tmp.join(format!("{rs}-prep.log")))
            .unwrap_or_default()
            .contains("real server ready")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !RS.iter().all(|rs| prepared(rs)) {
        assert!(
            Instant::now() < deadline,
            "rvsd realserver did not prepare the real servers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `rvsd realserver --mode tun` (with `extra` arguments) on every real server, then the
/// scenario with `method`; the real servers' preparation must come undone on SIGTERM.
fn tunnelled(lab: &mut Lab, method: &str, extra: &[&str], reals: [&str; 3], tmp: &std::path::Path) {
    prepare_real_servers(lab, "tun", extra, tmp);
    scenario(lab, method, reals, tmp);
    // Stopping `rvsd realserver` undoes what it did.
    let pid = lab.procs[0].id().to_string();
    sh(&["kill", "-TERM", &pid]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(tmp.join("rs1-prep.log"))
        .unwrap_or_default()
        .contains("real server settings undone")
    {
        assert!(
            Instant::now() < deadline,
            "rvsd realserver did not undo its settings after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ns_out(
            &lab.ns("rs1"),
            &["cat", "/proc/sys/net/ipv4/conf/all/arp_ignore"]
        )
        .trim(),
        "0"
    );
}

#[test]
fn tunnelling_through_xdp_reaches_real_servers_prepared_by_rvsd_realserver() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tun", false);
    let tmp = tempfile::tempdir().unwrap();
    tunnelled(&mut lab, "-i", &[], REALS, tmp.path());
    assert!(
        !ns_out(&lab.ns("rs1"), &["ip", "addr", "show", "dev", "lo"]).contains(VIP),
        "the VIP left lo after SIGTERM"
    );
}

#[test]
fn gue_tunnelling_through_xdp_reaches_real_servers_on_their_gue_port() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("gue", false);
    let tmp = tempfile::tempdir().unwrap();
    tunnelled(
        &mut lab,
        "-i --tun-type gue --tun-port 6080 --tun-csum",
        &["--gue-port", "6080"],
        REALS,
        tmp.path(),
    );
}

#[test]
fn ipv6_in_ipv6_and_gre_tunnelling_through_xdp_reach_ipv6_real_servers() {
    if !can_run() {
        return;
    }
    for (tag, method) in [("ip6ip6", "-i"), ("gre6", "-i --tun-type gre")] {
        let mut lab = Lab::new6(tag);
        let tmp = tempfile::tempdir().unwrap();
        tunnelled(&mut lab, method, &[], REALS6, tmp.path());
    }
}

#[test]
fn nat_through_xdp_rewrites_both_ways_for_real_servers_behind_the_director() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("nat", false);
    // The real servers live on 198.18.1.0/24 and route everything through the director.
    sh(&[
        "ip",
        "-n",
        &lab.ns("dir"),
        "addr",
        "add",
        "198.18.1.1/24",
        "dev",
        "eth0",
    ]);
    lab.real_servers_behind_the_director();
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-m", REALS_NAT, tmp.path());
}

/// A two-armed NAT director, as the seeds' NAT clusters are built: clients on eth0, the real
/// servers on their own bridge behind eth1, forwarding on. Nobody tells the director the real
/// servers' MACs: the first packets go to the kernel, which resolves them, then the program
/// takes next hops from the FIB and redirects frames between the two interfaces (devmap).
#[test]
fn nat_between_two_interfaces_takes_next_hops_from_the_fib() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("nat2", false);
    lab.second_arm();
    lab.real_servers_behind_the_director();
    lab.director_ifs = vec!["eth0", "eth1"];
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-m", REALS_NAT, tmp.path());
    let log = std::fs::read_to_string(tmp.path().join("rvsd.log")).unwrap_or_default();
    assert!(
        log.contains("eth1") && log.contains("XDP program attached"),
        "{log}"
    );
    // The program, not the kernel, carried the traffic: the kernel forwarded only the
    // packets sent while a real server's MAC was being resolved (the 1 MiB answer alone takes
    // some 350 ACKs from the client).
    let snmp = ns_out(&lab.ns("dir"), &["cat", "/proc/net/snmp"]);
    let ip: Vec<Vec<&str>> = snmp
        .lines()
        .filter(|l| l.starts_with("Ip:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let at = ip[0].iter().position(|f| *f == "ForwDatagrams").unwrap();
    let forwarded: u64 = ip[1][at].parse().unwrap();
    assert!(forwarded < 100, "the kernel forwarded {forwarded} packets");
}

/// The address of real server `rs` (rs1 -> 198.18.0.11:80 ...) in the direct-routing lab.
fn rs_addr(rs: &str) -> String {
    format!("198.18.0.1{}:80", &rs[2..])
}

/// A client connection from `sport` that has connected and waits for `go` to exist before it
/// sends its request; its answer (the real server's name) is read from its stdout.
struct HeldFlow {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl HeldFlow {
    fn open(lab: &Lab, sport: u16, go: &std::path::Path) -> Self {
        let script = format!(
            "import socket,os,time,sys\ns=socket.create_connection(('{VIP}',80),20,('198.18.0.10',{sport}))\nprint('connected',flush=True)\nwhile not os.path.exists('{}'): time.sleep(0.05)\ns.sendall(b'GET /name HTTP/1.0\\r\\n\\r\\n')\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nsys.stdout.write(b.split(b'\\r\\n\\r\\n',1)[1].decode()+'\\n')\n",
            go.display()
        );
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("cl"),
                "/usr/bin/python3",
                "-c",
                &script,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "connected");
        Self { child, out }
    }

    /// The real server that answers once `go` exists.
    fn answer(mut self) -> String {
        let mut answer = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut answer).unwrap();
        let _ = self.child.wait();
        answer.trim().to_owned()
    }
}

/// With three real servers: one quiesced (weight 0) and one removed while each holds an open
/// flow; new flows all go to the third, and both open flows are still answered by theirs.
#[test]
fn quiesced_and_removed_real_servers_keep_their_open_flows_and_get_no_new_ones() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("quiesce", true);
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-g", REALS, tmp.path());
    let socket = tmp.path().join("rvsd.sock");
    let go = tmp.path().join("go");
    let adm = |args: &[&str]| {
        let o = common::ipvsadm_at(tmp.path(), &socket, args, b"");
        assert!(o.status.success(), "ipvsadm {args:?}: {}", common::err(&o));
        common::out(&o)
    };
    // The connection table says where a held flow went.
    let dest_of = |sport: u16| {
        let conns = adm(&["-Lnc"]);
        let row = conns
            .lines()
            .find(|l| l.contains(&format!("198.18.0.10:{sport}")))
            .unwrap_or_else(|| panic!("{conns}"));
        row.split_whitespace().last().unwrap().to_owned()
    };
    let service = format!("{VIP}:80");
    let first = HeldFlow::open(&lab, 31_000, &go);
    let quiesced = dest_of(31_000);
    adm(&["-e", "-t", &service, "-r", &quiesced, "-g", "-w", "0"]);
    let second = HeldFlow::open(&lab, 31_001, &go);
    let removed = dest_of(31_001);
    assert_ne!(removed, quiesced, "a quiesced real server gets no new flow");
    adm(&["-d", "-t", &service, "-r", &removed]);
    let remaining = RS
        .iter()
        .map(|rs| rs_addr(rs))
        .find(|a| *a != quiesced && *a != removed)
        .unwrap();
    for p in 0..10 {
        let body = get(&lab, "name", 32_000 + p).expect("an answer through the VIP");
        assert_eq!(
            rs_addr(&String::from_utf8_lossy(&body)),
            remaining,
            "new flows avoid the quiesced and the removed real server"
        );
    }
    std::fs::write(&go, b"").unwrap();
    assert_eq!(
        rs_addr(&first.answer()),
        quiesced,
        "the open flow still reaches the quiesced real server"
    );
    assert_eq!(
        rs_addr(&second.answer()),
        removed,
        "the open flow still reaches the removed real server"
    );
}

#[test]
fn a_persistent_service_keeps_a_client_on_one_real_server_until_it_is_removed() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("persist", true);
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-g", REALS, tmp.path());
    let socket = tmp.path().join("rvsd.sock");
    let adm = |args: &[&str]| {
        let o = common::ipvsadm_at(tmp.path(), &socket, args, b"");
        assert!(o.status.success(), "ipvsadm {args:?}: {}", common::err(&o));
        common::out(&o)
    };
    adm(&["-E", "-t", &format!("{VIP}:80"), "-s", "rr", "-p", "300"]);
    let names: Vec<String> = (0..10)
        .map(|p| {
            let body = get(&lab, "name", 33_000 + p).expect("an answer through the VIP");
            String::from_utf8_lossy(&body).into_owned()
        })
        .collect();
    assert!(
        names.iter().all(|n| *n == names[0]),
        "every connection of the client reaches one real server: {names:?}"
    );
    let held = &rs_addr(&names[0]);
    let conns = adm(&["-Lnc"]);
    assert!(
        conns.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 6 && f[2] == "NONE" && f[3] == "198.18.0.10:0" && f[5] == held
        }),
        "-Lnc lists the client's template:\n{conns}"
    );
    adm(&["-d", "-t", &format!("{VIP}:80"), "-r", held]);
    let after = get(&lab, "name", 34_000).expect("an answer through the VIP");
    assert_ne!(
        String::from_utf8_lossy(&after),
        names[0],
        "a removed real server no longer holds its clients"
    );
}

/// The kernel's own IPVS selftest topology for direct routing: a client, a director with
/// forwarding on between two arms, and the real servers on a /24 of their own behind the
/// second one, prepared by `rvsd realserver --mode dr`; the client reaches the VIP through
/// the director, which does not hold it. Nothing has talked to the real servers before the
/// first SYN: the plane resolves their MACs itself, and the FIB then gives the program the
/// next hop out of eth1.
#[test]
fn direct_routing_behind_a_forwarding_director_needs_no_prior_traffic() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("dr2", false);
    lab.second_arm();
    lab.real_servers_behind_the_director();
    let (dir, cl) = (lab.ns("dir"), lab.ns("cl"));
    sh(&[
        "ip",
        "-n",
        &dir,
        "addr",
        "del",
        &format!("{VIP}/32"),
        "dev",
        "eth0",
    ]);
    sh(&["ip", "-n", &cl, "route", "add", VIP, "via", "198.18.0.1"]);
    lab.director_ifs = vec!["eth0", "eth1"];
    let tmp = tempfile::tempdir().unwrap();
    prepare_real_servers(&mut lab, "dr", &[], tmp.path());
    scenario(&mut lab, "-g", REALS_NAT, tmp.path());
    let log = std::fs::read_to_string(tmp.path().join("rvsd.log")).unwrap_or_default();
    assert!(log.contains("next hop resolved"), "{log}");
}

/// GRE over IPv4 and GUE over IPv6: with the IPv4 GUE and IPv6 GRE cases above, every tunnel
/// type in both families, each from an empty neighbour table.
#[test]
fn gre_over_ipv4_and_gue_over_ipv6_reach_their_real_servers() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("gre4", false);
    let tmp = tempfile::tempdir().unwrap();
    tunnelled(&mut lab, "-i --tun-type gre", &[], REALS, tmp.path());
    let mut lab = Lab::new6("gue6");
    let tmp = tempfile::tempdir().unwrap();
    tunnelled(
        &mut lab,
        "-i --tun-type gue --tun-port 6080",
        &["--gue-port", "6080"],
        REALS6,
        tmp.path(),
    );
}

/// NAT over IPv6: the real servers on 2001:db8:1::/64, routed through the director.
#[test]
fn ipv6_nat_through_xdp_rewrites_both_ways() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new6("nat6");
    let dir = lab.ns("dir");
    sh(&[
        "ip",
        "-n",
        &dir,
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &dir,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.forwarding=1",
    ]);
    for (rs, real) in RS.iter().zip(REALS_NAT6) {
        let ns = lab.ns(rs);
        sh(&["ip", "-n", &ns, "-6", "addr", "flush", "dev", "eth0"]);
        sh(&["ip", "-n", &ns, "-6", "addr", "flush", "dev", "lo"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{real}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:1::1",
        ]);
    }
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-m", REALS_NAT6, tmp.path());
}

/// A real server whose MAC changes (a replaced NIC, a moved VM) without announcing it is
/// followed: the plane resolves its next hops afresh every few seconds.
#[test]
fn a_real_servers_new_mac_is_followed_within_seconds() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("mac", true);
    let tmp = tempfile::tempdir().unwrap();
    scenario(&mut lab, "-g", REALS, tmp.path());
    let rs1 = lab.ns("rs1");
    sh(&[
        "ip",
        "-n",
        &rs1,
        "link",
        "set",
        "eth0",
        "address",
        "02:00:5e:00:01:99",
    ]);
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(20);
    let mut port = 40_000u16;
    let mut reached = false;
    while Instant::now() < deadline && !reached {
        reached = get(&lab, "name", port).is_some_and(|b| b == b"rs1");
        port += 1;
    }
    assert!(
        reached,
        "rs1 answered again after its MAC changed (waited {:?}); the director's neighbours: {}\n{}",
        changed.elapsed(),
        ns_out(&lab.ns("dir"), &["ip", "neigh", "show"]),
        std::fs::read_to_string(tmp.path().join("rvsd.log")).unwrap_or_default()
    );
    eprintln!(
        "rs1 reached again {:?} after its MAC changed",
        changed.elapsed()
    );
}
