//! Per-packet cost of the XDP program against a bare MAC-swap XDP_TX program measured the same
//! way, with BPF_PROG_TEST_RUN (the kernel reports the time its runs took). Root only.
//! Run: `cargo run --release -p rvs-xdp --example prog_cost`.
//!
//! Two tables. With `repeat`, the kernel runs the program 2,000,000 times in one call, on the
//! frame the previous run left (it does not restore it): harmless for direct routing (only
//! the MACs change), but an IP-in-IP or NAT frame is no longer for the VIP after one run, so
//! only DR is measured that way. Every mode is measured by one run per call, many calls: the
//! kernel restores nothing but copies the frame in anew each call, and the time it reports
//! is that of the one run (plus the clock read around it, the same for every program).

use aya::programs::{TestRun, TestRunOptions, Xdp};
use rvs_core::{
    Change, DataPlane, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey,
};
use rvs_xdp::neighbors::Neighbors;
use rvs_xdp::{DirectorAddr, XdpPlane};
use std::net::IpAddr;

const REPEAT: u32 = 2_000_000;
const ROUNDS: usize = 7;
/// Calls of one run each, per round, for the every-mode table.
const SINGLE_RUNS: u32 = 20_000;

struct Fixed;
impl Neighbors for Fixed {
    fn mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        let last = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[15],
        };
        Some([2, 0, 0, 0, 1, last])
    }
}

#[path = "support/bench_bpf.rs"]
mod bench_bpf;

fn frame(dport: u16) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 0xd1, 2, 0, 0, 0, 0, 0xc1, 8, 0];
    p.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 9, 9, 198, 18, 0, 1,
    ]);
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    p
}

/// One timed run: mean ns per packet over REPEAT, checking the verdict is XDP_TX (3).
fn once(prog: &Xdp, input: &[u8]) -> f64 {
    let mut out = vec![0u8; input.len() + 64];
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            repeat: REPEAT,
            ..TestRunOptions::default()
        })
        .expect("test run");
    assert_eq!(
        r.return_value,
        3,
        "the program must forward (XDP_TX) frame to port {}",
        u16::from_be_bytes([input[36], input[37]])
    );
    r.duration.as_nanos() as f64
}

/// The mean of many one-run calls, in ns, checking every verdict is XDP_TX (3).
fn single(prog: &Xdp, input: &[u8]) -> f64 {
    let mut out = vec![0u8; input.len() + 128];
    let mut total = 0u128;
    for _ in 0..SINGLE_RUNS {
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(input),
                data_out: Some(&mut out),
                repeat: 1,
                ..TestRunOptions::default()
            })
            .expect("test run");
        assert_eq!(r.return_value, 3, "the program must forward (XDP_TX)");
        total += r.duration.as_nanos();
    }
    total as f64 / f64::from(SINGLE_RUNS)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // A network namespace of our own: no routes, forwarding off, so the program's FIB lookups
    // answer nothing and every run measures the same path (the plane's MACs, XDP_TX).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare (root needed)");
    let director = DirectorAddr {
        tunnel_src: "198.18.0.254".parse().unwrap(),
        tunnel_src6: Some("2001:db8::fe".parse().unwrap()),
    };
    let mut plane = XdpPlane::load(director, Box::new(Fixed)).expect("load (root needed)");
    let modes = [
        (80u16, ForwardMethod::Route, "direct routing"),
        (
            81,
            ForwardMethod::Tunnel(rvs_core::Tunnel::IPIP),
            "IP-in-IP",
        ),
        (82, ForwardMethod::Masq, "NAT"),
    ];
    let mut changes = Vec::new();
    for (port, fwd, _) in modes {
        let key = ServiceKey::tcp(std::net::SocketAddr::from(([198, 18, 0, 1], port)));
        changes.push(Change::ServiceAdded(
            ServiceConfig::new(key).with_scheduler(SchedulerKind::Rr),
        ));
        let dest = DestConfig::new(std::net::SocketAddr::from(([198, 18, 1, 2], port)), fwd);
        changes.push(Change::DestAdded { service: key, dest });
    }
    plane.apply(&changes).expect("configure");
    let macswap = bench_bpf::object("bench_macswap");
    let mut bare = aya::Ebpf::load(&macswap).expect("load the baseline");
    let base: &mut Xdp = bare
        .program_mut("bench_macswap")
        .unwrap()
        .try_into()
        .unwrap();
    base.load().expect("load the baseline");
    // Interleave the contenders round by round, so drifts of the machine hit all alike.
    let mut repeated = [Vec::new(), Vec::new()];
    let mut singles = vec![Vec::new(); modes.len() + 1];
    for _ in 0..ROUNDS {
        repeated[0].push(once(base, &frame(80)));
        repeated[1].push(once(plane.program().unwrap(), &frame(80)));
        singles[0].push(single(base, &frame(80)));
        for (i, (port, _, _)) in modes.iter().enumerate() {
            singles[i + 1].push(single(plane.program().unwrap(), &frame(*port)));
        }
    }
    let (bare, dr) = (median(repeated[0].clone()), median(repeated[1].clone()));
    println!("With repeat ({ROUNDS} x {REPEAT} runs, median):\n");
    println!("| program | ns per packet | packets/s per core | share of the bare program's rate |");
    println!("|---|---|---|---|");
    println!(
        "| bare MAC swap + XDP_TX | {bare:.1} | {:.2} M | 1.00 |",
        1e3 / bare
    );
    println!(
        "| rvs direct routing (established flow) | {dr:.1} | {:.2} M | {:.2} |",
        1e3 / dr,
        bare / dr
    );
    let bare = median(singles[0].clone());
    println!("\nOne run per call ({ROUNDS} x {SINGLE_RUNS} calls, median of the rounds' means):\n");
    println!(
        "| program | ns per run | ns above the bare program | share of the bare program's rate |"
    );
    println!("|---|---|---|---|");
    println!("| bare MAC swap + XDP_TX | {bare:.1} | 0 | 1.00 |");
    for (i, (_, _, name)) in modes.iter().enumerate() {
        let c = median(singles[i + 1].clone());
        println!(
            "| rvs {name} (established flow) | {c:.1} | {:.1} | {:.2} |",
            c - bare,
            bare / c
        );
    }
}
