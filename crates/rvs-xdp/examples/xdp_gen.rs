//! The packet generator of `bench/xdp.py`: sends IPv4 UDP frames out of an interface at the
//! rate one core can make them, with `bpf/bench_gen.bpf.c` run by BPF_PROG_TEST_RUN in
//! live-frames mode (the kernel's own XDP traffic generator path: each frame goes through the
//! program and its XDP_TX really transmits it). On a veth the frames arrive at the peer, where
//! the director under test receives them. Root only.
//!
//! Run: `cargo run --release -p rvs-xdp --example xdp_gen -- --interface g0 --packets 1000000
//! --src-mac 02:00:00:00:00:10 --dst-mac 02:00:00:00:00:01 --src-ip 198.18.0.10
//! --dst-ip 198.18.0.1`. Prints the packets sent and the seconds it took.
//!
//! trafgen (netsniff-ng) was the first generator: it sends through an AF_PACKET ring at about
//! 400,000 frames/s here and stalls when a veth ring fills, too slow to load a director that
//! runs on a core of its own; nothing packaged in Debian generates XDP live frames, so this
//! small one is written here.

use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};
use aya::EbpfLoader;
use clap::Parser;
use std::net::Ipv4Addr;
use std::time::Instant;

#[path = "support/bench_bpf.rs"]
mod bench_bpf;

/// Header bytes the program writes into every frame: Ethernet, IPv4 and UDP.
const HEADER_LEN: usize = 42;
/// Frames per call of the program before the kernel flushes the transmit queue.
const BATCH: u32 = 64;

#[derive(Parser)]
#[command(about = "Sends UDP frames out of an interface with XDP live frames")]
struct Args {
    /// The interface the frames leave by.
    #[arg(long)]
    interface: String,
    /// How many frames to send.
    #[arg(long)]
    packets: u32,
    /// Distinct flows: the UDP source port cycles over this many values from 32768.
    #[arg(long, default_value_t = 256)]
    flows: u32,
    /// Destination MAC address (the director's).
    #[arg(long)]
    dst_mac: String,
    /// Source MAC address.
    #[arg(long)]
    src_mac: String,
    /// Source IPv4 address (the client's).
    #[arg(long)]
    src_ip: Ipv4Addr,
    /// Destination IPv4 address (the virtual service's).
    #[arg(long)]
    dst_ip: Ipv4Addr,
    /// Destination UDP port.
    #[arg(long, default_value_t = 9)]
    dport: u16,
    /// Frame length without the FCS, at least 60.
    #[arg(long, default_value_t = 60)]
    frame_len: u16,
}

fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("MAC address {text:?}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("MAC address {text:?}: six bytes expected"))
}

/// The one's-complement checksum of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One frame as the program sends it (the source port is written per frame; UDP without a
/// checksum, which IPv4 allows).
fn frame(args: &Args) -> Result<Vec<u8>, String> {
    if args.frame_len < 60 {
        return Err(format!("--frame-len {} is below 60", args.frame_len));
    }
    let mut f = Vec::with_capacity(usize::from(args.frame_len));
    f.extend_from_slice(&parse_mac(&args.dst_mac)?);
    f.extend_from_slice(&parse_mac(&args.src_mac)?);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = args.frame_len - 14;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&args.src_ip.octets());
    ip.extend_from_slice(&args.dst_ip.octets());
    let sum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&32768u16.to_be_bytes());
    f.extend_from_slice(&args.dport.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(usize::from(args.frame_len), b'a');
    Ok(f)
}

fn run(args: &Args) -> Result<(u32, f64), Box<dyn std::error::Error>> {
    if args.flows == 0 || args.flows > 32768 {
        return Err(format!("--flows {} is outside 1..=32768", args.flows).into());
    }
    let frame = frame(args)?;
    let ifindex = nix::net::if_::if_nametoindex(args.interface.as_str())
        .map_err(|e| format!("interface {}: {e}", args.interface))?;
    let mut words = [0u64; 5];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u64::from_ne_bytes(frame[i * 8..i * 8 + 8].try_into()?);
    }
    let tail = u16::from_ne_bytes([frame[HEADER_LEN - 2], frame[HEADER_LEN - 1]]);
    let mut ebpf = EbpfLoader::new()
        .override_global("template_words", &words, true)
        .override_global("template_tail", &tail, true)
        .override_global("flows", &args.flows, true)
        .load(&bench_bpf::object("bench_gen"))?;
    let prog: &mut Xdp = ebpf
        .program_mut("bench_gen")
        .ok_or("bench_gen missing from the object")?
        .try_into()?;
    prog.load()?;
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    let ctx: Vec<u8> = [0, u32::from(args.frame_len), 0, ifindex, 0, 0]
        .iter()
        .flat_map(|w: &u32| w.to_ne_bytes())
        .collect();
    let start = Instant::now();
    prog.test_run(TestRunOptions {
        data_in: Some(&frame),
        ctx_in: Some(&ctx),
        repeat: args.packets,
        attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
        ..TestRunOptions::default()
    })?;
    Ok((args.packets, start.elapsed().as_secs_f64()))
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok((packets, seconds)) => println!("{packets} {seconds:.6}"),
        Err(e) => {
            eprintln!("xdp_gen: {e}");
            std::process::exit(1);
        }
    }
}
