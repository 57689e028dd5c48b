/* Structures shared by the XDP program and rvs-xdp (mirrored in crates/rvs-bpf-abi, which
 * asserts their sizes). Addresses and ports are in network byte order. An address is four
 * 32-bit words: an IPv6 address, or an IPv4 address in word 0 and zeros (keys also carry the
 * family, so the two never meet). */
#ifndef RVS_STRUCTS_H
#define RVS_STRUCTS_H

#include <linux/types.h>

/* Slots of a service's lookup ring. */
#define RVS_RING_SIZE 256
/* Services and dests the maps hold. */
#define RVS_MAX_SERVICES 1024
#define RVS_MAX_DESTS 65536
/* Flows the connection tables hold by default (rvs-xdp sets the size at load). */
#define RVS_CONN_TABLE 65536

/* What the program did with a packet, counted per CPU in rvs_verdicts (one slot each). */
#define RVS_V_PASSED 0     /* not for a virtual service: left to the kernel */
#define RVS_V_FORWARDED 1  /* sent to its real server by direct routing or NAT */
#define RVS_V_TUNNELLED 2  /* sent to its real server in a tunnel (or answered with ICMP) */
#define RVS_V_NAT_REPLY 3  /* a real server's NAT reply, rewritten and sent to its client */
#define RVS_V_TO_KERNEL 4  /* rewritten for NAT, left to the kernel to route (no next hop) */
#define RVS_V_NO_DEST 5    /* dropped: the scheduler found no available dest (as IPVS) */
#define RVS_V_NO_HOP 6     /* dropped: no next hop known for its real server */
#define RVS_V_BAD_DEST 7   /* dropped: its connection names a dest that is gone */
#define RVS_V_TUN_DROP 8   /* dropped by the tunnel (too big without DF, no room to grow) */
#define RVS_VERDICTS 9
/* Forwarding methods of a dest. */
#define RVS_FWD_ROUTE 1
#define RVS_FWD_TUNNEL 2
#define RVS_FWD_MASQ 3
/* Tunnel encapsulations (--tun-type) and their checksum option. */
#define RVS_TUN_IPIP 0 /* IP-in-IP, IPv6-in-IPv6 */
#define RVS_TUN_GUE 1  /* outer UDP to tun_port, a 4-byte GUE header */
#define RVS_TUN_GRE 2  /* a GRE header (protocol: the inner family's ethertype) */
#define RVS_TUN_CSUM 1 /* --tun-csum: checksum the UDP datagram or the GRE packet */

/* A virtual service: address, port, protocol. */
/* Address families of keys. */
#define RVS_AF_INET 4
#define RVS_AF_INET6 6

struct rvs_svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 af;
};

/* How a service places new flows on its ring. */
#define RVS_PICK_CURSOR 1 /* the next slot in turn: the ring is the scheduler's sequence (rr, wrr) */
/* The kernel's hash_32(key, 8) picks the slot; the ring is the core's answer per bucket. */
#define RVS_PICK_SRC 2      /* key: the client's address (sh) */
#define RVS_PICK_SRC_PORT 3 /* key: the client's address plus its port (sh with sh-port) */
#define RVS_PICK_DST 4      /* key: the destination address (dh) */
/* The kernel's linear scan over the dests (ring slots 0..len, in list order) by their counts
 * in rvs_counts: */
#define RVS_PICK_LC 5  /* least (active << 8) + inactive */
#define RVS_PICK_WLC 6 /* least overhead / weight */
#define RVS_PICK_SED 7 /* least (active + 1) / weight */
#define RVS_PICK_NQ 8  /* the first idle dest, else as sed */
#define RVS_PICK_OVF 9 /* the heaviest dest whose active connections do not exceed its weight */
#define RVS_PICK_FO 10 /* the heaviest dest */
#define RVS_PICK_TWOS 11 /* two weighted random picks, the less loaded per weight (ip_vs_twos.c) */
#define RVS_PICK_LBLC 12 /* the dest cached for the destination address, else wlc (ip_vs_lblc.c) */
#define RVS_PICK_MH 13   /* the kernel's mh table (rvs_mh); `len` holds RVS_MH_* flags */
#define RVS_PICK_LBLCR 14 /* a set of dests per destination address (ip_vs_lblcr.c) */
/* Members an lblcr set keeps (the kernel's sets are unbounded). */
#define RVS_LBLCR_MAX 16
#define RVS_MH_FALLBACK 1
#define RVS_MH_PORT 2
/* Slots of a service's mh table (IP_VS_MH_TAB_INDEX 12 -> 4093). */
#define RVS_MH_SIZE 4093

/* lblc's cache key: a service and a destination address. */
struct rvs_lblc_key {
	__u32 svc_id;
	__u32 daddr[4];
};

/* A service's slot: its ring is rvs_ring[id * RVS_RING_SIZE ...], of which `len` slots are
 * used in cursor mode. */
struct rvs_svc {
	__u32 id;
	__u16 pick;
	__u16 len;
	__u32 persist_timeout; /* seconds (-p); 0 = not persistent */
	__u32 persist_mask[4]; /* -M (IPv4) or the prefix (IPv6) as a mask, network byte order */
};

/* A real server. */
struct rvs_dest {
	__u32 addr[4];
	__u16 port;
	__u8 method;
	__u8 available; /* 0 once removed: open flows go on, persistence templates lapse */
	__u8 mac[6];       /* from the neighbour table when rvs-xdp wrote it; zero if unknown */
	__u16 weight;      /* -w (0..65535) */
	__u32 u_threshold; /* -x; 0 = none */
	__u32 l_threshold; /* -y; 0 = 3/4 of -x */
	/* The next hop the program last found in the kernel's FIB (written by the program, once
	 * a second at most; rvs-xdp writes zeros): the egress interface (0 = none found), the
	 * MACs, when (the program's clock >> 20: units of about 1.05 ms, wrapping after 52
	 * days), and the egress interface's MTU (0 = not looked up yet). */
	__u32 nh_ifindex;
	__u8 nh_smac[6];
	__u8 nh_dmac[6];
	__u8 tun_type;  /* RVS_TUN_* */
	__u8 tun_flags; /* RVS_TUN_CSUM */
	__u16 tun_port; /* GUE's destination port */
	__u32 nh_stamp;
	__u32 nh_mtu;
};

/* A VIP the real server's tc decapsulation program accepts tunnelled packets for. */
struct rvs_vip_key {
	__u32 addr[4];
	__u8 af;
	__u8 pad[3];
};

/* The real server's tc decapsulation settings. */
struct rvs_decap_config {
	__u16 gue_port; /* network order; 0 = no GUE */
	__u16 pad;
};

/* A dest's connections, as IPVS counts them: ESTABLISHED ones are active, others inactive.
 * Kept by the program and corrected from the connection table by rvs-xdp's sweep. */
struct rvs_count {
	__s32 active;
	__s32 inactive;
	__u32 overloaded; /* IPVS's overload flag, from the thresholds */
	__u32 pad;
};

/* A connection (the client's 5-tuple towards the VIP); IPv6 ones are keyed so in rvs_conns,
 * IPv4 ones by the rvs_conn_key4 made from it in rvs_conns4. */
struct rvs_conn_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 af;
	__u8 pad[2];
};

/* An IPv4 connection's key in its own map (rvs_conns4): the lookup of every packet hashes and
 * compares 16 bytes instead of an rvs_conn_key's 40. */
struct rvs_conn_key4 {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* Connection states, from the TCP flags the director sees (IPVS's names). */
#define RVS_ST_NONE 0
#define RVS_ST_SYN_RECV 1
#define RVS_ST_ESTABLISHED 2
#define RVS_ST_FIN_WAIT 3
#define RVS_ST_CLOSE 4
#define RVS_ST_UDP 5

/* Where a connection goes, its state, and when it last saw a packet. */
struct rvs_conn {
	__u32 dest;
	__u8 state;
	__u8 persist; /* a persistence template controls it: its packets keep the template alive */
	__u8 pad[2];
	__u64 last_ns;
};

/* A persistence template, keyed by an rvs_conn_key with the client address masked and client
 * port 0 (as IPVS's templates): the dest a client network sticks to, and its last use. */
struct rvs_tmpl {
	__u32 dest;
	__u32 pad;
	__u64 last_ns;
};

/* The way back of a masqueraded connection, keyed by the real server's side of it
 * (saddr/sport = real server, daddr/dport = client): what to put back, and where to send it. */
struct rvs_nat {
	__u32 vip[4];
	__u16 vport;
	__u8 client_mac[6]; /* the next hop towards the client */
	__u8 smac[6];       /* the egress interface's MAC */
	__u16 pad;
	__u32 ifindex;      /* the egress interface; 0 = back where it came from */
	__u32 dest;         /* the dest's index, whose outgoing traffic this counts */
};

/* Per-dest, per-CPU traffic counters: connections, packets and bytes from clients, and the
 * replies the director sees (NAT's way back). */
struct rvs_stat {
	__u64 conns;
	__u64 packets;
	__u64 bytes;
	__u64 out_packets;
	__u64 out_bytes;
};

/* The director's own addresses (the tunnels' outer source), the idle timeouts of
 * connections by state, in seconds (--set tcp tcpfin udp), and the program's clock: CLOCK_MONOTONIC
 * in ns is jiffies * tick_ns + clock_offset (rvs-xdp measures both when it loads the program). */
struct rvs_config {
	__u32 tunnel_src; /* IPv4 */
	__u32 tcp_timeout;
	__u32 tcpfin_timeout;
	__u32 udp_timeout;
	__u32 syn_timeout;
	__u32 tunnel_src6[4]; /* IPv6; all zero if the interface has none */
	__u32 tick_ns;
	__u64 clock_offset;
};

/* Field offsets, asserted here and in rvs-bpf-abi (offset_of!): one layout, two mirrors. */
_Static_assert(__builtin_offsetof(struct rvs_svc_key, addr) == 0, "rvs_svc_key.addr");
_Static_assert(__builtin_offsetof(struct rvs_svc_key, port) == 16, "rvs_svc_key.port");
_Static_assert(__builtin_offsetof(struct rvs_svc_key, proto) == 18, "rvs_svc_key.proto");
_Static_assert(__builtin_offsetof(struct rvs_svc_key, af) == 19, "rvs_svc_key.af");
_Static_assert(__builtin_offsetof(struct rvs_svc, id) == 0, "rvs_svc.id");
_Static_assert(__builtin_offsetof(struct rvs_svc, pick) == 4, "rvs_svc.pick");
_Static_assert(__builtin_offsetof(struct rvs_svc, len) == 6, "rvs_svc.len");
_Static_assert(__builtin_offsetof(struct rvs_svc, persist_timeout) == 8, "rvs_svc.persist_timeout");
_Static_assert(__builtin_offsetof(struct rvs_svc, persist_mask) == 12, "rvs_svc.persist_mask");
_Static_assert(__builtin_offsetof(struct rvs_dest, addr) == 0, "rvs_dest.addr");
_Static_assert(__builtin_offsetof(struct rvs_dest, port) == 16, "rvs_dest.port");
_Static_assert(__builtin_offsetof(struct rvs_dest, method) == 18, "rvs_dest.method");
_Static_assert(__builtin_offsetof(struct rvs_dest, available) == 19, "rvs_dest.available");
_Static_assert(__builtin_offsetof(struct rvs_dest, mac) == 20, "rvs_dest.mac");
_Static_assert(__builtin_offsetof(struct rvs_dest, weight) == 26, "rvs_dest.weight");
_Static_assert(__builtin_offsetof(struct rvs_dest, u_threshold) == 28, "rvs_dest.u_threshold");
_Static_assert(__builtin_offsetof(struct rvs_dest, l_threshold) == 32, "rvs_dest.l_threshold");
_Static_assert(__builtin_offsetof(struct rvs_dest, nh_ifindex) == 36, "rvs_dest.nh_ifindex");
_Static_assert(__builtin_offsetof(struct rvs_dest, nh_smac) == 40, "rvs_dest.nh_smac");
_Static_assert(__builtin_offsetof(struct rvs_dest, nh_dmac) == 46, "rvs_dest.nh_dmac");
_Static_assert(__builtin_offsetof(struct rvs_dest, tun_type) == 52, "rvs_dest.tun_type");
_Static_assert(__builtin_offsetof(struct rvs_dest, tun_flags) == 53, "rvs_dest.tun_flags");
_Static_assert(__builtin_offsetof(struct rvs_dest, tun_port) == 54, "rvs_dest.tun_port");
_Static_assert(__builtin_offsetof(struct rvs_dest, nh_stamp) == 56, "rvs_dest.nh_stamp");
_Static_assert(__builtin_offsetof(struct rvs_dest, nh_mtu) == 60, "rvs_dest.nh_mtu");
_Static_assert(__builtin_offsetof(struct rvs_count, active) == 0, "rvs_count.active");
_Static_assert(__builtin_offsetof(struct rvs_count, inactive) == 4, "rvs_count.inactive");
_Static_assert(__builtin_offsetof(struct rvs_count, overloaded) == 8, "rvs_count.overloaded");
_Static_assert(__builtin_offsetof(struct rvs_count, pad) == 12, "rvs_count.pad");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, saddr) == 0, "rvs_conn_key.saddr");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, daddr) == 16, "rvs_conn_key.daddr");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, sport) == 32, "rvs_conn_key.sport");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, dport) == 34, "rvs_conn_key.dport");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, proto) == 36, "rvs_conn_key.proto");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, af) == 37, "rvs_conn_key.af");
_Static_assert(__builtin_offsetof(struct rvs_conn_key, pad) == 38, "rvs_conn_key.pad");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, saddr) == 0, "rvs_conn_key4.saddr");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, daddr) == 4, "rvs_conn_key4.daddr");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, sport) == 8, "rvs_conn_key4.sport");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, dport) == 10, "rvs_conn_key4.dport");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, proto) == 12, "rvs_conn_key4.proto");
_Static_assert(__builtin_offsetof(struct rvs_conn_key4, pad) == 13, "rvs_conn_key4.pad");
_Static_assert(__builtin_offsetof(struct rvs_conn, dest) == 0, "rvs_conn.dest");
_Static_assert(__builtin_offsetof(struct rvs_conn, state) == 4, "rvs_conn.state");
_Static_assert(__builtin_offsetof(struct rvs_conn, persist) == 5, "rvs_conn.persist");
_Static_assert(__builtin_offsetof(struct rvs_conn, pad) == 6, "rvs_conn.pad");
_Static_assert(__builtin_offsetof(struct rvs_conn, last_ns) == 8, "rvs_conn.last_ns");
_Static_assert(__builtin_offsetof(struct rvs_nat, vip) == 0, "rvs_nat.vip");
_Static_assert(__builtin_offsetof(struct rvs_nat, vport) == 16, "rvs_nat.vport");
_Static_assert(__builtin_offsetof(struct rvs_nat, client_mac) == 18, "rvs_nat.client_mac");
_Static_assert(__builtin_offsetof(struct rvs_nat, smac) == 24, "rvs_nat.smac");
_Static_assert(__builtin_offsetof(struct rvs_nat, pad) == 30, "rvs_nat.pad");
_Static_assert(__builtin_offsetof(struct rvs_nat, ifindex) == 32, "rvs_nat.ifindex");
_Static_assert(__builtin_offsetof(struct rvs_nat, dest) == 36, "rvs_nat.dest");
_Static_assert(__builtin_offsetof(struct rvs_tmpl, dest) == 0, "rvs_tmpl.dest");
_Static_assert(__builtin_offsetof(struct rvs_tmpl, pad) == 4, "rvs_tmpl.pad");
_Static_assert(__builtin_offsetof(struct rvs_tmpl, last_ns) == 8, "rvs_tmpl.last_ns");
_Static_assert(__builtin_offsetof(struct rvs_stat, conns) == 0, "rvs_stat.conns");
_Static_assert(__builtin_offsetof(struct rvs_stat, packets) == 8, "rvs_stat.packets");
_Static_assert(__builtin_offsetof(struct rvs_stat, bytes) == 16, "rvs_stat.bytes");
_Static_assert(__builtin_offsetof(struct rvs_stat, out_packets) == 24, "rvs_stat.out_packets");
_Static_assert(__builtin_offsetof(struct rvs_stat, out_bytes) == 32, "rvs_stat.out_bytes");
_Static_assert(__builtin_offsetof(struct rvs_config, tunnel_src) == 0, "rvs_config.tunnel_src");
_Static_assert(__builtin_offsetof(struct rvs_config, tcp_timeout) == 4, "rvs_config.tcp_timeout");
_Static_assert(__builtin_offsetof(struct rvs_config, tcpfin_timeout) == 8, "rvs_config.tcpfin_timeout");
_Static_assert(__builtin_offsetof(struct rvs_config, udp_timeout) == 12, "rvs_config.udp_timeout");
_Static_assert(__builtin_offsetof(struct rvs_config, syn_timeout) == 16, "rvs_config.syn_timeout");
_Static_assert(__builtin_offsetof(struct rvs_config, tunnel_src6) == 20, "rvs_config.tunnel_src6");
_Static_assert(__builtin_offsetof(struct rvs_config, tick_ns) == 36, "rvs_config.tick_ns");
_Static_assert(__builtin_offsetof(struct rvs_config, clock_offset) == 40, "rvs_config.clock_offset");

#endif
