//! The data shared by rvs's BPF programs and their Rust loader: `#[repr(C)]` mirrors of
//! `bpf/include/rvs_structs.h`, with their sizes checked at compile time. Addresses and ports
//! are in network byte order, as the programs read them from packets. An address ([`Addr`]) is
//! four 32-bit words: an IPv6 address, or an IPv4 address in word 0 and zeros; keys carry the
//! family ([`AF_INET`], [`AF_INET6`]) so the two never meet.

#![no_std]
#![deny(missing_docs)]

/// An address as the maps hold it (the words are the network-order bytes read natively; an
/// IPv4 address in word 0), with its family byte.
#[must_use]
pub fn addr_of(ip: core::net::IpAddr) -> (Addr, u8) {
    let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    match ip {
        core::net::IpAddr::V4(v4) => ([word(&v4.octets()), 0, 0, 0], AF_INET),
        core::net::IpAddr::V6(v6) => {
            let o = v6.octets();
            (
                [
                    word(&o[0..4]),
                    word(&o[4..8]),
                    word(&o[8..12]),
                    word(&o[12..16]),
                ],
                AF_INET6,
            )
        }
    }
}

/// Slots of a service's lookup ring (`RVS_RING_SIZE`).
pub const RING_SIZE: u32 = 256;
/// Services the maps hold (`RVS_MAX_SERVICES`, `rvs_services` max entries).
pub const MAX_SERVICES: u32 = 1024;
/// Dests the maps hold (`rvs_dests` max entries).
pub const MAX_DESTS: u32 = 65536;
/// The connection tables' size when none is given at load (`RVS_CONN_TABLE`).
pub const CONN_TABLE: u32 = 65536;

/// The programs' maps by name, as the C declares them (`bpf/xdp/maps.h`,
/// `bpf/rvs_tc_decap.bpf.c`) and rvs-xdp opens them; `tests/defines.rs` checks the two agree.
pub mod maps {
    /// `rvs_services`.
    pub const SERVICES: &str = "rvs_services";
    /// `rvs_ring`.
    pub const RING: &str = "rvs_ring";
    /// `rvs_dests`.
    pub const DESTS: &str = "rvs_dests";
    /// `rvs_cursors`.
    pub const CURSORS: &str = "rvs_cursors";
    /// `rvs_conns`.
    pub const CONNS: &str = "rvs_conns";
    /// `rvs_conns4`.
    pub const CONNS4: &str = "rvs_conns4";
    /// `rvs_nat_back`.
    pub const NAT_BACK: &str = "rvs_nat_back";
    /// `rvs_templates`.
    pub const TEMPLATES: &str = "rvs_templates";
    /// `rvs_counts`.
    pub const COUNTS: &str = "rvs_counts";
    /// `rvs_mh`.
    pub const MH: &str = "rvs_mh";
    /// `rvs_lblc`.
    pub const LBLC: &str = "rvs_lblc";
    /// `rvs_stats`.
    pub const STATS: &str = "rvs_stats";
    /// `rvs_config`.
    pub const CONFIG: &str = "rvs_config";
    /// `rvs_verdicts`.
    pub const VERDICTS: &str = "rvs_verdicts";
    /// `rvs_tx_ports`.
    pub const TX_PORTS: &str = "rvs_tx_ports";
    /// `rvs_lblcr`.
    pub const LBLCR: &str = "rvs_lblcr";
    /// `rvs_vips`.
    pub const VIPS: &str = "rvs_vips";
    /// `rvs_decap_config`.
    pub const DECAP_CONFIG: &str = "rvs_decap_config";
    /// Every map of the XDP program.
    pub const XDP: [&str; 16] = [
        SERVICES, RING, DESTS, CURSORS, CONNS, CONNS4, NAT_BACK, TEMPLATES, COUNTS, MH, LBLC,
        STATS, CONFIG, VERDICTS, TX_PORTS, LBLCR,
    ];
    /// Every map of the real servers' tc decapsulation program.
    pub const DECAP: [&str; 2] = [VIPS, DECAP_CONFIG];
}

/// What the program did with packets (`RVS_V_*`): the slots of `rvs_verdicts`, with the name
/// and meaning each is reported under.
pub mod verdict {
    /// Not for a virtual service: left to the kernel.
    pub const PASSED: u32 = 0;
    /// Sent to its real server by direct routing or NAT.
    pub const FORWARDED: u32 = 1;
    /// Sent to its real server in a tunnel (or answered with ICMP).
    pub const TUNNELLED: u32 = 2;
    /// A real server's NAT reply, rewritten and sent to its client.
    pub const NAT_REPLY: u32 = 3;
    /// Rewritten for NAT, left to the kernel to route.
    pub const TO_KERNEL: u32 = 4;
    /// Dropped: the scheduler found no available dest.
    pub const NO_DEST: u32 = 5;
    /// Dropped: no next hop known for its real server.
    pub const NO_HOP: u32 = 6;
    /// Dropped: its connection names a dest that is gone.
    pub const BAD_DEST: u32 = 7;
    /// Dropped by the tunnel.
    pub const TUN_DROP: u32 = 8;
    /// The number of slots (`RVS_VERDICTS`).
    pub const COUNT: u32 = 9;
    /// Each slot's name, by index.
    pub const NAMES: [&str; COUNT as usize] = [
        "passed",
        "forwarded",
        "tunnelled",
        "nat_reply",
        "to_kernel",
        "dropped_no_dest",
        "dropped_no_next_hop",
        "dropped_dest_gone",
        "dropped_by_tunnel",
    ];
}
/// `RVS_FWD_ROUTE`: direct routing.
pub const FWD_ROUTE: u8 = 1;
/// `RVS_FWD_TUNNEL`: IP-in-IP.
pub const FWD_TUNNEL: u8 = 2;
/// `RVS_FWD_MASQ`: NAT.
pub const FWD_MASQ: u8 = 3;
/// `RVS_TUN_IPIP`: IP-in-IP or IPv6-in-IPv6.
pub const TUN_IPIP: u8 = 0;
/// `RVS_TUN_GUE`: Generic UDP Encapsulation.
pub const TUN_GUE: u8 = 1;
/// `RVS_TUN_GRE`: GRE.
pub const TUN_GRE: u8 = 2;
/// `RVS_TUN_CSUM`: checksum the outer UDP datagram or GRE packet (`--tun-csum`).
pub const TUN_CSUM: u8 = 1;

/// `RVS_AF_INET`: the family byte of IPv4 keys.
pub const AF_INET: u8 = 4;
/// `RVS_AF_INET6`: the family byte of IPv6 keys.
pub const AF_INET6: u8 = 6;

/// An address as the maps hold it: the raw bytes of an IPv6 address, or of an IPv4 address
/// followed by zeros, as four native words.
pub type Addr = [u32; 4];

/// `struct rvs_svc_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SvcKey {
    /// Virtual address.
    pub addr: Addr,
    /// Virtual port.
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// [`AF_INET`] or [`AF_INET6`].
    pub af: u8,
}

/// `RVS_PICK_CURSOR`: new flows take the ring's slots in turn (the ring is the scheduler's
/// sequence).
pub const PICK_CURSOR: u16 = 1;
/// `RVS_PICK_SRC`: the kernel's `hash_32` of the client's address picks the slot (sh); the
/// ring holds the core's answer for each bucket.
pub const PICK_SRC: u16 = 2;
/// `RVS_PICK_SRC_PORT`: as [`PICK_SRC`], of the client's address plus its port (sh-port).
pub const PICK_SRC_PORT: u16 = 3;
/// `RVS_PICK_DST`: as [`PICK_SRC`], of the destination address (dh).
pub const PICK_DST: u16 = 4;
/// `RVS_PICK_LC`: the kernel's lc scan over the dests in ring slots `0..len` by their
/// [`Count`]s: least `(active << 8) + inactive`.
pub const PICK_LC: u16 = 5;
/// `RVS_PICK_WLC`: as [`PICK_LC`], least overhead per weight.
pub const PICK_WLC: u16 = 6;
/// `RVS_PICK_SED`: as [`PICK_LC`], least `(active + 1)` per weight.
pub const PICK_SED: u16 = 7;
/// `RVS_PICK_NQ`: as [`PICK_LC`], the first idle dest, else as sed.
pub const PICK_NQ: u16 = 8;
/// `RVS_PICK_OVF`: as [`PICK_LC`], the heaviest dest whose active connections do not exceed
/// its weight.
pub const PICK_OVF: u16 = 9;
/// `RVS_PICK_FO`: as [`PICK_LC`], the heaviest dest.
pub const PICK_FO: u16 = 10;
/// `RVS_PICK_TWOS`: two weighted random picks over the dests in ring slots `0..len`, the less
/// loaded per weight.
pub const PICK_TWOS: u16 = 11;
/// `RVS_PICK_LBLC`: the dest cached for the destination address, else wlc's pick.
pub const PICK_LBLC: u16 = 12;
/// `RVS_PICK_MH`: the kernel's mh table in `rvs_mh`; the service's `len` holds
/// [`MH_FALLBACK`] and [`MH_PORT`].
pub const PICK_MH: u16 = 13;
/// `RVS_PICK_LBLCR`: a set of dests per destination address, else wlc's pick joins it.
pub const PICK_LBLCR: u16 = 14;
/// `RVS_MH_FALLBACK`: mh-fallback.
pub const MH_FALLBACK: u16 = 1;
/// `RVS_MH_PORT`: mh-port.
pub const MH_PORT: u16 = 2;
/// `RVS_LBLCR_MAX`: members of one lblcr set (the kernel's sets are unbounded).
pub const LBLCR_MAX: u32 = 16;
/// `RVS_MH_SIZE`: slots of a service's mh table.
pub const MH_SIZE: u32 = 4093;

/// `struct rvs_svc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Svc {
    /// The service's ring: slots `id * RING_SIZE ..`.
    pub id: u32,
    /// One of the `PICK_*` modes.
    pub pick: u16,
    /// Slots used in cursor mode.
    pub len: u16,
    /// Persistence timeout in seconds (`-p`); 0 = not persistent.
    pub persist_timeout: u32,
    /// Persistence netmask (`-M`, or the IPv6 prefix as a mask), network byte order.
    pub persist_mask: Addr,
}

/// `struct rvs_dest`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dest {
    /// Real server address.
    pub addr: Addr,
    /// Real server port.
    pub port: u16,
    /// [`FWD_ROUTE`], [`FWD_TUNNEL`] or [`FWD_MASQ`]; 0 = unused.
    pub method: u8,
    /// 1 while the dest belongs to its service; 0 once removed (its open flows go on, its
    /// persistence templates lapse).
    pub available: u8,
    /// The real server's (or its gateway's) MAC address from the neighbour table, used when
    /// the kernel's FIB gives no next hop; zero if unknown.
    pub mac: [u8; 6],
    /// `-w` (0..=65535).
    pub weight: u16,
    /// `-x`, the upper connection threshold; 0 = none.
    pub u_threshold: u32,
    /// `-y`, the lower connection threshold; 0 = 3/4 of the upper one.
    pub l_threshold: u32,
    /// The next hop's interface the program last found in the FIB (0 = none); the program
    /// writes this and the fields below, rvs-xdp writes zeros.
    pub nh_ifindex: u32,
    /// The next hop's source MAC (the egress interface's).
    pub nh_smac: [u8; 6],
    /// The next hop's MAC.
    pub nh_dmac: [u8; 6],
    /// One of the `TUN_*` encapsulations, for [`FWD_TUNNEL`].
    pub tun_type: u8,
    /// [`TUN_CSUM`] or 0.
    pub tun_flags: u8,
    /// GUE's destination port, network byte order.
    pub tun_port: u16,
    /// When the next hop was looked up: the program's clock (ns) >> 20.
    pub nh_stamp: u32,
    /// The egress interface's MTU when the next hop was looked up (0 = not yet).
    pub nh_mtu: u32,
}

/// `struct rvs_count`: a dest's connections as IPVS counts them (ESTABLISHED ones active).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Active connections.
    pub active: i32,
    /// Inactive connections.
    pub inactive: i32,
    /// IPVS's overload flag (1 = set), from the thresholds.
    pub overloaded: u32,
    /// Zero.
    pub pad: u32,
}

/// `struct rvs_conn_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnKey {
    /// Client address.
    pub saddr: Addr,
    /// Virtual address.
    pub daddr: Addr,
    /// Client port.
    pub sport: u16,
    /// Virtual port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// [`AF_INET`] or [`AF_INET6`].
    pub af: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// `struct rvs_conn_key4`: an IPv4 connection's key in `rvs_conns4` (16 bytes to hash, where
/// a [`ConnKey`] has 40).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnKey4 {
    /// Client address.
    pub saddr: u32,
    /// Virtual address.
    pub daddr: u32,
    /// Client port.
    pub sport: u16,
    /// Virtual port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Zero.
    pub pad: [u8; 3],
}

impl From<ConnKey4> for ConnKey {
    fn from(k: ConnKey4) -> Self {
        Self {
            saddr: [k.saddr, 0, 0, 0],
            daddr: [k.daddr, 0, 0, 0],
            sport: k.sport,
            dport: k.dport,
            proto: k.proto,
            af: AF_INET,
            pad: [0; 2],
        }
    }
}

/// `struct rvs_vip_key`: a VIP the real server's decapsulation program accepts.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VipKey {
    /// The VIP.
    pub addr: Addr,
    /// [`AF_INET`] or [`AF_INET6`].
    pub af: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// `struct rvs_decap_config`: the real server's decapsulation settings.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecapConfig {
    /// The GUE port, network byte order; 0 = no GUE.
    pub gue_port: u16,
    /// Zero.
    pub pad: u16,
}

/// Connection states (`RVS_ST_*`).
#[allow(missing_docs, reason = "each is IPVS's state of the same name")]
pub mod state {
    pub const NONE: u8 = 0;
    pub const SYN_RECV: u8 = 1;
    pub const ESTABLISHED: u8 = 2;
    pub const FIN_WAIT: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const UDP: u8 = 5;
}

/// `struct rvs_conn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conn {
    /// The dest's index.
    pub dest: u32,
    /// One of [`state`].
    pub state: u8,
    /// 1 if a persistence template controls the connection (its packets keep it alive).
    pub persist: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// Last packet, the program's clock (CLOCK_MONOTONIC ns, to the kernel's tick).
    pub last_ns: u64,
}

/// `struct rvs_nat`: the way back of a masqueraded connection.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nat {
    /// The VIP to put back as the source.
    pub vip: Addr,
    /// The virtual port to put back.
    pub vport: u16,
    /// The client's (or its next hop's) MAC address.
    pub client_mac: [u8; 6],
    /// The egress interface's MAC address.
    pub smac: [u8; 6],
    /// Zero.
    pub pad: u16,
    /// The egress interface; 0 = back out the one the packet came in on.
    pub ifindex: u32,
    /// The dest's index, whose outgoing counters the replies add to.
    pub dest: u32,
}

/// `struct rvs_tmpl`: a persistence template, keyed by a [`ConnKey`] whose client address is
/// masked and whose client port is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tmpl {
    /// The dest's index.
    pub dest: u32,
    /// Zero.
    pub pad: u32,
    /// Last use, the program's clock (CLOCK_MONOTONIC ns, to the kernel's tick).
    pub last_ns: u64,
}

/// `struct rvs_stat`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// New connections.
    pub conns: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Packets to clients (the replies the program sees: NAT's way back).
    pub out_packets: u64,
    /// Bytes to clients.
    pub out_bytes: u64,
}

/// `struct rvs_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// The outer source address of IPv4 tunnels.
    pub tunnel_src: u32,
    /// Idle timeout of ESTABLISHED connections, seconds.
    pub tcp_timeout: u32,
    /// Idle timeout of FIN_WAIT connections, seconds.
    pub tcpfin_timeout: u32,
    /// Idle timeout of UDP flows, seconds.
    pub udp_timeout: u32,
    /// Idle timeout of SYN_RECV connections, seconds.
    pub syn_timeout: u32,
    /// The outer source address of IPv6 tunnels; all zero if the director has none.
    pub tunnel_src6: Addr,
    /// Nanoseconds per jiffy (the kernel's tick): the program's clock in CLOCK_MONOTONIC
    /// nanoseconds is `jiffies * tick_ns + clock_offset`.
    pub tick_ns: u32,
    /// See `tick_ns`.
    pub clock_offset: u64,
}

// Field offsets, asserted here and in rvs_structs.h (_Static_assert): one layout, two mirrors.
const _: () = assert!(core::mem::offset_of!(SvcKey, addr) == 0);
const _: () = assert!(core::mem::offset_of!(SvcKey, port) == 16);
const _: () = assert!(core::mem::offset_of!(SvcKey, proto) == 18);
const _: () = assert!(core::mem::offset_of!(SvcKey, af) == 19);
const _: () = assert!(core::mem::offset_of!(Svc, id) == 0);
const _: () = assert!(core::mem::offset_of!(Svc, pick) == 4);
const _: () = assert!(core::mem::offset_of!(Svc, len) == 6);
const _: () = assert!(core::mem::offset_of!(Svc, persist_timeout) == 8);
const _: () = assert!(core::mem::offset_of!(Svc, persist_mask) == 12);
const _: () = assert!(core::mem::offset_of!(Dest, addr) == 0);
const _: () = assert!(core::mem::offset_of!(Dest, port) == 16);
const _: () = assert!(core::mem::offset_of!(Dest, method) == 18);
const _: () = assert!(core::mem::offset_of!(Dest, available) == 19);
const _: () = assert!(core::mem::offset_of!(Dest, mac) == 20);
const _: () = assert!(core::mem::offset_of!(Dest, weight) == 26);
const _: () = assert!(core::mem::offset_of!(Dest, u_threshold) == 28);
const _: () = assert!(core::mem::offset_of!(Dest, l_threshold) == 32);
const _: () = assert!(core::mem::offset_of!(Dest, nh_ifindex) == 36);
const _: () = assert!(core::mem::offset_of!(Dest, nh_smac) == 40);
const _: () = assert!(core::mem::offset_of!(Dest, nh_dmac) == 46);
const _: () = assert!(core::mem::offset_of!(Dest, tun_type) == 52);
const _: () = assert!(core::mem::offset_of!(Dest, tun_flags) == 53);
const _: () = assert!(core::mem::offset_of!(Dest, tun_port) == 54);
const _: () = assert!(core::mem::offset_of!(Dest, nh_stamp) == 56);
const _: () = assert!(core::mem::offset_of!(Dest, nh_mtu) == 60);
const _: () = assert!(core::mem::offset_of!(Count, active) == 0);
const _: () = assert!(core::mem::offset_of!(Count, inactive) == 4);
const _: () = assert!(core::mem::offset_of!(Count, overloaded) == 8);
const _: () = assert!(core::mem::offset_of!(Count, pad) == 12);
const _: () = assert!(core::mem::offset_of!(ConnKey, saddr) == 0);
const _: () = assert!(core::mem::offset_of!(ConnKey, daddr) == 16);
const _: () = assert!(core::mem::offset_of!(ConnKey, sport) == 32);
const _: () = assert!(core::mem::offset_of!(ConnKey, dport) == 34);
const _: () = assert!(core::mem::offset_of!(ConnKey, proto) == 36);
const _: () = assert!(core::mem::offset_of!(ConnKey, af) == 37);
const _: () = assert!(core::mem::offset_of!(ConnKey, pad) == 38);
const _: () = assert!(core::mem::offset_of!(ConnKey4, saddr) == 0);
const _: () = assert!(core::mem::offset_of!(ConnKey4, daddr) == 4);
const _: () = assert!(core::mem::offset_of!(ConnKey4, sport) == 8);
const _: () = assert!(core::mem::offset_of!(ConnKey4, dport) == 10);
const _: () = assert!(core::mem::offset_of!(ConnKey4, proto) == 12);
const _: () = assert!(core::mem::offset_of!(ConnKey4, pad) == 13);
const _: () = assert!(core::mem::offset_of!(Conn, dest) == 0);
const _: () = assert!(core::mem::offset_of!(Conn, state) == 4);
const _: () = assert!(core::mem::offset_of!(Conn, persist) == 5);
const _: () = assert!(core::mem::offset_of!(Conn, pad) == 6);
const _: () = assert!(core::mem::offset_of!(Conn, last_ns) == 8);
const _: () = assert!(core::mem::offset_of!(Nat, vip) == 0);
const _: () = assert!(core::mem::offset_of!(Nat, vport) == 16);
const _: () = assert!(core::mem::offset_of!(Nat, client_mac) == 18);
const _: () = assert!(core::mem::offset_of!(Nat, smac) == 24);
const _: () = assert!(core::mem::offset_of!(Nat, pad) == 30);
const _: () = assert!(core::mem::offset_of!(Nat, ifindex) == 32);
const _: () = assert!(core::mem::offset_of!(Nat, dest) == 36);
const _: () = assert!(core::mem::offset_of!(Tmpl, dest) == 0);
const _: () = assert!(core::mem::offset_of!(Tmpl, pad) == 4);
const _: () = assert!(core::mem::offset_of!(Tmpl, last_ns) == 8);
const _: () = assert!(core::mem::offset_of!(Stat, conns) == 0);
const _: () = assert!(core::mem::offset_of!(Stat, packets) == 8);
const _: () = assert!(core::mem::offset_of!(Stat, bytes) == 16);
const _: () = assert!(core::mem::offset_of!(Stat, out_packets) == 24);
const _: () = assert!(core::mem::offset_of!(Stat, out_bytes) == 32);
const _: () = assert!(core::mem::offset_of!(Config, tunnel_src) == 0);
const _: () = assert!(core::mem::offset_of!(Config, tcp_timeout) == 4);
const _: () = assert!(core::mem::offset_of!(Config, tcpfin_timeout) == 8);
const _: () = assert!(core::mem::offset_of!(Config, udp_timeout) == 12);
const _: () = assert!(core::mem::offset_of!(Config, syn_timeout) == 16);
const _: () = assert!(core::mem::offset_of!(Config, tunnel_src6) == 20);
const _: () = assert!(core::mem::offset_of!(Config, tick_ns) == 36);
const _: () = assert!(core::mem::offset_of!(Config, clock_offset) == 40);

const _: () = assert!(core::mem::size_of::<SvcKey>() == 20);
const _: () = assert!(core::mem::size_of::<Svc>() == 28);
const _: () = assert!(core::mem::size_of::<Dest>() == 64);
const _: () = assert!(core::mem::size_of::<ConnKey>() == 40);
const _: () = assert!(core::mem::size_of::<ConnKey4>() == 16);
const _: () = assert!(core::mem::size_of::<Conn>() == 16);
const _: () = assert!(core::mem::size_of::<Stat>() == 40);
const _: () = assert!(core::mem::size_of::<Tmpl>() == 16);
const _: () = assert!(core::mem::size_of::<Count>() == 16);
const _: () = assert!(core::mem::size_of::<VipKey>() == 20);
const _: () = assert!(core::mem::size_of::<DecapConfig>() == 4);
const _: () = assert!(core::mem::size_of::<Nat>() == 40);
const _: () = assert!(core::mem::size_of::<Config>() == 48);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type here is #[repr(C)], Copy, made only of integers and byte arrays, with
    // explicit padding fields, so any bit pattern is valid and there are no implicit holes.
    #![allow(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
    use super::{
        Config, Conn, ConnKey, ConnKey4, Count, DecapConfig, Dest, Nat, Stat, Svc, SvcKey, Tmpl,
        VipKey,
    };
    unsafe impl aya::Pod for SvcKey {}
    unsafe impl aya::Pod for Svc {}
    unsafe impl aya::Pod for Dest {}
    unsafe impl aya::Pod for ConnKey {}
    unsafe impl aya::Pod for ConnKey4 {}
    unsafe impl aya::Pod for Conn {}
    unsafe impl aya::Pod for Stat {}
    unsafe impl aya::Pod for Nat {}
    unsafe impl aya::Pod for Tmpl {}
    unsafe impl aya::Pod for Count {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for VipKey {}
    unsafe impl aya::Pod for DecapConfig {}
}
