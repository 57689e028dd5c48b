// SPDX-License-Identifier: GPL-2.0
/* rvs's XDP data plane: IPv4 and IPv6 TCP, UDP and SCTP virtual services forwarded by direct
 * routing (the destination MAC changes), tunnelling (an outer IPv4 or IPv6 header to the real
 * server: IP-in-IP, IPv6-in-IPv6) or NAT (the destination becomes the real server; its replies,
 * routed back through the director, get the VIP back as their source), with incremental
 * checksum updates.
 *
 * A new flow is scheduled with the kernel's semantics from tables rvs-xdp fills from the core:
 * rr and wrr take the scheduler's sequence in turn, sh and dh look up the kernel's bucket of
 * their hash key, mh the kernel's table by hsiphash; lc, wlc, sed, nq, ovf, fo, twos, lblc
 * and lblcr scan the dests over the connection counts this program keeps. The choice is kept
 * in an LRU connection table, so a flow stays on its dest while the tables change (quiesced
 * or removed dests get no new flows, their open flows go on). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "include/rvs_structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rvs_svc_key);
	__type(value, struct rvs_svc);
} rvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024 * RVS_RING_SIZE);
	__type(key, __u32);
	__type(value, __u32); /* dest index + 1; 0 = no dest */
} rvs_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct rvs_dest);
} rvs_dests SEC(".maps");

/* The next ring position of cursor-mode services, shared by all CPUs (atomic increments). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} rvs_cursors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_conn);
} rvs_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_nat);
} rvs_nat_back SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_tmpl);
} rvs_templates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct rvs_count);
} rvs_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024 * RVS_MH_SIZE);
	__type(key, __u32);
	__type(value, __u32); /* dest index + 1; 0 = none */
} rvs_mh SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rvs_lblc_key);
	__type(value, __u32); /* the dest's index */
} rvs_lblc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct rvs_stat);
} rvs_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_config);
} rvs_config SEC(".maps");

/* The interfaces the program runs on, by ifindex: frames leave by another one through here. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} rvs_tx_ports SEC(".maps");

#define AF_INET 2
#define AF_INET6 10

/* Where a frame goes next: its MACs and the interface it leaves by (0 = the one it came in on). */
struct hop {
	__u8 smac[6];
	__u8 dmac[6];
	__u32 ifindex;
};

/* The next hop towards `dst` from the kernel's FIB and neighbour table; 0 when found. The
 * helper finds nothing where forwarding is off on the ingress interface, or the neighbour is
 * not resolved yet. */
static __always_inline int fib_hop(struct xdp_md *ctx, __u8 af, const __u32 *dst, struct hop *h)
{
	struct bpf_fib_lookup p = { .ifindex = ctx->ingress_ifindex };
	if (af == RVS_AF_INET6) {
		p.family = AF_INET6;
		__builtin_memcpy(p.ipv6_dst, dst, sizeof(p.ipv6_dst));
	} else {
		p.family = AF_INET;
		p.ipv4_dst = dst[0];
	}
	if (bpf_fib_lookup(ctx, &p, sizeof(p), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	__builtin_memcpy(h->smac, p.smac, ETH_ALEN);
	__builtin_memcpy(h->dmac, p.dmac, ETH_ALEN);
	h->ifindex = p.ifindex;
	return 0;
}

/* The next hop of a dest: the FIB's answer, kept in the dest's entry for a second (no answer
 * for a tenth, so a neighbour the kernel just resolved is taken up soon); without one, the
 * MAC rvs-xdp read from the neighbour table, out the ingress interface (whose MAC the frame
 * was sent to). -1 if neither is known. */
static __always_inline int dest_hop(struct xdp_md *ctx, struct rvs_dest *d, __u8 af, __u64 now,
				    const __u8 *ingress_mac, struct hop *h)
{
	if (now - d->nh_stamp > 1000000000ULL) {
		struct hop f = {};
		if (fib_hop(ctx, af, d->addr, &f) == 0) {
			__builtin_memcpy(d->nh_smac, f.smac, ETH_ALEN);
			__builtin_memcpy(d->nh_dmac, f.dmac, ETH_ALEN);
			d->nh_ifindex = f.ifindex;
			d->nh_stamp = now;
		} else {
			d->nh_ifindex = 0;
			d->nh_stamp = now - 900000000ULL;
		}
	}
	if (d->nh_ifindex) {
		__builtin_memcpy(h->smac, d->nh_smac, ETH_ALEN);
		__builtin_memcpy(h->dmac, d->nh_dmac, ETH_ALEN);
		h->ifindex = d->nh_ifindex;
		return 0;
	}
	if (!(d->mac[0] | d->mac[1] | d->mac[2] | d->mac[3] | d->mac[4] | d->mac[5]))
		return -1;
	__builtin_memcpy(h->smac, ingress_mac, ETH_ALEN);
	__builtin_memcpy(h->dmac, d->mac, ETH_ALEN);
	h->ifindex = 0;
	return 0;
}

/* Sends the frame by its hop's interface: XDP_TX back out the ingress one, a devmap redirect
 * to another of rvs's interfaces, a plain redirect to any other. */
static __always_inline int send(struct xdp_md *ctx, const struct hop *h)
{
	if (h->ifindex == 0 || h->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	long r = bpf_redirect_map(&rvs_tx_ports, h->ifindex, 0);
	if (r == XDP_REDIRECT)
		return r;
	return bpf_redirect(h->ifindex, 0);
}

/* Writes a hop's MACs into a frame. */
static __always_inline void set_macs(struct ethhdr *eth, const struct hop *h)
{
	__builtin_memcpy(eth->h_dest, h->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, h->smac, ETH_ALEN);
}

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/* IPVS's addr_fold in host order: an IPv4 address, or the XOR of an IPv6 address's words
 * (an IPv4 address's other words are zero). */
static __always_inline __u32 addr_fold(const __u32 *a)
{
	return bpf_ntohl(a[0] ^ a[1] ^ a[2] ^ a[3]);
}

/* The kernel's hash_32(key, 8) (include/linux/hash.h), as ip_vs_sh.c and ip_vs_dh.c use it. */
static __always_inline __u32 hash_32_8(__u32 key)
{
	return (key * 0x61C88647u) >> 24;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The checksum of a 20-byte IPv4 header whose check field is zero. */
static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *p = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += p[i];
	return csum_fold(sum);
}

/* Adds the change of one 32-bit word (raw, as in the packet) to an unfolded checksum sum
 * (RFC 1624's incremental update: ~old + new). */
static __always_inline __u32 csum_word(__u32 s, __u32 from, __u32 to)
{
	return s + (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
}

/* Rewrites one address (`words` 32-bit words: 1 for IPv4, 4 for IPv6) and port of a TCP, UDP
 * or SCTP packet, fixing the IPv4 header checksum (`ipsum`, NULL for IPv6) and the TCP/UDP
 * checksum, which covers the pseudo-header's address. SCTP's CRC32c covers the port but not
 * the addresses; rvs-xdp lets only port-keeping NAT through for SCTP. `l4` points at the L4
 * header, checked to hold its ports. */
static __always_inline void nat_rewrite(__u32 *a, int words, __u16 *ipsum, __u8 proto, __u16 *p, void *l4,
					void *data_end, const __u32 *addr, __u16 port)
{
	__u16 *l4sum = 0;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) <= data_end)
			l4sum = &th->check;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) <= data_end && uh->check)
			l4sum = &uh->check;
	}
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (i < words)
			s = csum_word(s, a[i], addr[i]);
	if (l4sum) {
		__u32 l = s + (__u16)~*p + port + (__u16)~*l4sum;
		__u16 folded = csum_fold(l);
		*l4sum = proto == IPPROTO_UDP && folded == 0 ? 0xffff : folded;
	}
	if (ipsum)
		*ipsum = csum_fold(s + (__u16)~*ipsum);
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (i < words)
			a[i] = addr[i];
	*p = port;
}

/* The frame's IP header, either family: where its addresses are, and how many words. */
struct l3 {
	struct iphdr *ip;    /* IPv4, else NULL */
	struct ipv6hdr *ip6; /* IPv6, else NULL */
};

/* Rewrites the source (`dst` 0) or destination address and port of a packet. */
static __always_inline void nat_l3(struct l3 *h, __u8 proto, __u16 *ports, void *data_end, int dst,
				   const __u32 *addr, __u16 port)
{
	__u16 *p = dst ? &ports[1] : &ports[0];
	if (h->ip) {
		__u32 *a = dst ? &h->ip->daddr : &h->ip->saddr;
		nat_rewrite(a, 1, &h->ip->check, proto, p, ports, data_end, addr, port);
	} else if (h->ip6) {
		__u32 *a = dst ? h->ip6->daddr.in6_u.u6_addr32 : h->ip6->saddr.in6_u.u6_addr32;
		nat_rewrite(a, 4, 0, proto, p, ports, data_end, addr, port);
	}
}

/* The way back of a masqueraded connection: real server -> client becomes VIP -> client. */
static __always_inline int nat_back(struct xdp_md *ctx, struct ethhdr *eth, struct l3 *h,
				    const struct rvs_conn_key *ck, __u16 *ports, void *data_end)
{
	struct rvs_nat *back = bpf_map_lookup_elem(&rvs_nat_back, ck);
	if (!back)
		return XDP_PASS;
	__u32 dest_id = back->dest;
	struct rvs_stat *st = bpf_map_lookup_elem(&rvs_stats, &dest_id);
	if (st) {
		st->out_packets += 1;
		st->out_bytes += (__u64)(data_end - (void *)(eth + 1)); /* IP bytes, as IPVS counts */
	}
	nat_l3(h, ck->proto, ports, data_end, 0, back->vip, back->vport);
	struct hop hop = { .ifindex = back->ifindex };
	__builtin_memcpy(hop.smac, back->smac, ETH_ALEN);
	__builtin_memcpy(hop.dmac, back->client_mac, ETH_ALEN);
	set_macs(eth, &hop);
	return send(ctx, &hop);
}

/* The TCP flags an SCTP packet's first chunk stands for: INIT opens (SYN), ABORT resets
 * (RST), the SHUTDOWN chunks close (FIN), every other chunk carries the association (ACK). */
static __always_inline __u8 sctp_flags(__u8 chunk)
{
	switch (chunk) {
	case 1: /* INIT */
		return 0x02;
	case 6: /* ABORT */
		return 0x04;
	case 7:  /* SHUTDOWN */
	case 8:  /* SHUTDOWN ACK */
	case 14: /* SHUTDOWN COMPLETE */
		return 0x01;
	default:
		return 0x10;
	}
}

/* The state after a packet with these TCP flags (IPVS's INPUT_ONLY view: the director sees
 * the client's side only in DR and tunnel modes). SCTP goes through the same states by
 * sctp_flags. */
static __always_inline __u8 next_state(__u8 state, __u8 proto, __u8 flags)
{
	if (proto == IPPROTO_UDP)
		return RVS_ST_UDP;
	if (flags & 0x04) /* RST */
		return RVS_ST_CLOSE;
	if (flags & 0x01) /* FIN */
		return RVS_ST_FIN_WAIT;
	if ((flags & 0x12) == 0x02) /* SYN without ACK */
		return RVS_ST_SYN_RECV;
	if (flags & 0x10) /* ACK */
		return state == RVS_ST_FIN_WAIT || state == RVS_ST_CLOSE ? state : RVS_ST_ESTABLISHED;
	return state;
}

/* The idle timeout of a state, in seconds. */
static __always_inline __u32 state_timeout(struct rvs_config *cfg, __u8 state)
{
	switch (state) {
	case RVS_ST_ESTABLISHED:
		return cfg->tcp_timeout;
	case RVS_ST_UDP:
		return cfg->udp_timeout;
	case RVS_ST_CLOSE:
		return 10;
	case RVS_ST_FIN_WAIT:
		return cfg->tcpfin_timeout;
	default:
		return cfg->syn_timeout;
	}
}

/* Counts a connection of `dest` in `state` (delta +1, IPVS's bind) or forgets it (-1,
 * unbind), and sets or clears the overload flag as ip_vs_bind_dest and ip_vs_unbind_dest do. */
static __always_inline void count_conn(__u32 dest, __u8 state, __s32 delta)
{
	struct rvs_count *c = bpf_map_lookup_elem(&rvs_counts, &dest);
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &dest);
	if (!c || !d)
		return;
	if (state == RVS_ST_ESTABLISHED)
		__sync_fetch_and_add(&c->active, delta);
	else
		__sync_fetch_and_add(&c->inactive, delta);
	__s64 total = (__s64)c->active + c->inactive;
	__s64 upper = d->u_threshold, lower = d->l_threshold;
	if (delta > 0) {
		if (upper && total >= upper)
			c->overloaded = 1;
	} else if (lower ? total < lower : (upper ? total * 4 < upper * 3 : 1)) {
		c->overloaded = 0;
	}
}

/* A connection changed between active and inactive (its total stays). */
static __always_inline void move_conn(__u32 dest, __u8 from, __u8 to)
{
	struct rvs_count *c = bpf_map_lookup_elem(&rvs_counts, &dest);
	if (!c || (from == RVS_ST_ESTABLISHED) == (to == RVS_ST_ESTABLISHED))
		return;
	__s32 up = to == RVS_ST_ESTABLISHED ? 1 : -1;
	__sync_fetch_and_add(&c->active, up);
	__sync_fetch_and_add(&c->inactive, -up);
}

/* Whether IPVS's overload flag is set on a dest. */
static __always_inline int overloaded(__u32 dest)
{
	struct rvs_count *c = bpf_map_lookup_elem(&rvs_counts, &dest);
	return c && c->overloaded;
}

/* The dest index in slot `i` of a service's ring; -1 if the slot is empty. */
static __always_inline long ring_dest(__u32 svc_id, __u32 i)
{
	__u32 slot = svc_id * RVS_RING_SIZE + i;
	__u32 *v = bpf_map_lookup_elem(&rvs_ring, &slot);
	return v && *v ? (long)*v - 1 : -1;
}

/* What the schedulers read of a dest: its weight, its connections (never below 0 while the
 * program's and the sweeper's updates race), IPVS's overhead, and its flags. */
struct dest_load {
	__s64 w, act, inact, oh;
	__u32 available, overloaded;
};

static __always_inline int load_of(__u32 id, struct dest_load *l)
{
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &id);
	struct rvs_count *c = bpf_map_lookup_elem(&rvs_counts, &id);
	if (!d || !c)
		return -1;
	l->w = d->weight;
	l->act = c->active > 0 ? c->active : 0;
	l->inact = c->inactive > 0 ? c->inactive : 0;
	l->oh = (l->act << 8) + l->inact; /* ip_vs_dest_conn_overhead */
	l->available = d->available;
	l->overloaded = c->overloaded;
	return 0;
}

/* The state of a connection-counting scan, carried through bpf_loop. */
struct least_scan {
	__u32 svc_id;
	__u32 len;
	__u32 pick;
	__u32 pad;
	long best;
	__s64 boh; /* the best dest's overhead */
	__s64 bw;  /* and weight */
};

/* One dest of the scan (a bpf_loop callback, so the verifier checks the body once however
 * many dests there are). Returns 1 to stop. */
static long least_step(__u64 index, void *arg)
{
	struct least_scan *x = arg;
	__u32 i = index;
	if (i >= x->len)
		return 1;
	long id = ring_dest(x->svc_id, i);
	struct dest_load l;
	if (id < 0 || load_of(id, &l) < 0 || l.w == 0 || l.overloaded)
		return 0; /* quiesced or overloaded: never chosen */
	__s64 act = l.act, w = l.w, oh;
	if (x->pick == RVS_PICK_LC) {
		oh = l.oh;
		if (x->best < 0 || oh < x->boh) {
			x->best = id;
			x->boh = oh;
		}
		return 0;
	}
	if (x->pick == RVS_PICK_FO) {
		if (x->best < 0 || w > x->bw) {
			x->best = id;
			x->bw = w;
		}
		return 0;
	}
	if (x->pick == RVS_PICK_OVF) {
		if (act <= w && (x->best < 0 || w > x->bw)) {
			x->best = id;
			x->bw = w;
		}
		return 0;
	}
	if (x->pick == RVS_PICK_NQ && act == 0) {
		x->best = id; /* the first idle dest, at once */
		return 1;
	}
	oh = x->pick == RVS_PICK_WLC ? l.oh : act + 1;
	if (x->best < 0 || x->boh * w > oh * x->bw) {
		x->best = id;
		x->boh = oh;
		x->bw = w;
	}
	return 0;
}

/* twos (ip_vs_twos.c), in two passes over the dests in list order: the total weight of the
 * available ones, then the two weighted random choices. */
struct twos_scan {
	__u32 svc_id;
	__u32 len;
	__s64 total;
	__s64 r1, r2;
	long c1, c2;
	__s64 w1, w2, oh1, oh2;
};

/* The available dest in slot `i` of the scan: its index, weight and overhead; -1 if none. */
static __always_inline long twos_dest(__u32 svc_id, __u32 i, __s64 *w, __s64 *oh)
{
	long id = ring_dest(svc_id, i);
	struct dest_load l;
	if (id < 0 || load_of(id, &l) < 0 || l.w == 0 || l.overloaded)
		return -1;
	*w = l.w;
	*oh = l.oh;
	return id;
}

static long twos_total(__u64 index, void *arg)
{
	struct twos_scan *x = arg;
	__s64 w, oh;
	if (index >= x->len)
		return 1;
	long id = twos_dest(x->svc_id, index, &w, &oh);
	if (id >= 0) {
		x->total += w;
		x->c1 = id; /* the last available one, should the draws miss */
	}
	return 0;
}

static long twos_pick(__u64 index, void *arg)
{
	struct twos_scan *x = arg;
	__s64 w, oh;
	if (index >= x->len)
		return 1;
	long id = twos_dest(x->svc_id, index, &w, &oh);
	if (id < 0)
		return 0;
	x->r1 -= w;
	x->r2 -= w;
	if (x->r1 <= 0 && x->w1 == -1) {
		x->c1 = id;
		x->w1 = w;
		x->oh1 = oh;
	}
	if (x->r2 <= 0 && x->w2 == -1) {
		x->c2 = id;
		x->w2 = w;
		x->oh2 = oh;
	}
	return x->w1 != -1 && x->w2 != -1;
}

static __always_inline long twos(const struct rvs_svc *svc)
{
	struct twos_scan x = { .svc_id = svc->id, .len = svc->len, .c1 = -1, .c2 = -1, .w1 = -1, .w2 = -1 };
	bpf_loop(RVS_RING_SIZE, twos_total, &x, 0);
	if (x.c1 < 0)
		return -1;
	__u64 total = (__u64)x.total + 1; /* unsigned: BPF has no signed division before v4 */
	x.r1 = (__u64)bpf_get_prandom_u32() % total;
	x.r2 = (__u64)bpf_get_prandom_u32() % total;
	bpf_loop(RVS_RING_SIZE, twos_pick, &x, 0);
	if (x.c2 >= 0 && x.w2 * x.oh1 > x.w1 * x.oh2)
		return x.c2;
	return x.c1;
}

/* The connection-counting schedulers (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c,
 * ip_vs_ovf.c): one
 * scan in list order, ties keep the earlier dest, weighted comparisons cross-multiplied. */
static __always_inline long least(const struct rvs_svc *svc, __u32 pick)
{
	struct least_scan x = { .svc_id = svc->id, .len = svc->len, .pick = pick, .best = -1 };
	bpf_loop(RVS_RING_SIZE, least_step, &x, 0);
	return x.best;
}

/* Whether some dest of the service has fewer active connections than half its weight (lblc's
 * test before it moves a destination address off an overloaded dest). */
struct half_scan {
	__u32 svc_id;
	__u32 len;
	__u32 found;
};

static long half_step(__u64 index, void *arg)
{
	struct half_scan *x = arg;
	if (index >= x->len)
		return 1;
	long id = ring_dest(x->svc_id, index);
	struct dest_load l;
	if (id < 0 || load_of(id, &l) < 0)
		return 0;
	if (l.act * 2 < l.w) {
		x->found = 1;
		return 1;
	}
	return 0;
}

/* Whether lblc and lblcr keep a destination address on dest `id`: it is in the service, has
 * weight, and is not overloaded in their sense (more active connections than its weight while
 * another dest is under half of its). */
static __always_inline int locality_keeps(const struct rvs_svc *svc, __u32 id)
{
	struct dest_load l;
	if (load_of(id, &l) < 0 || !l.available || l.w == 0)
		return 0;
	if (l.act <= l.w)
		return 1;
	struct half_scan h = { .svc_id = svc->id, .len = svc->len };
	bpf_loop(RVS_RING_SIZE, half_step, &h, 0);
	return !h.found;
}

/* lblc (ip_vs_lblc.c): the dest cached for the destination address while it keeps it;
 * otherwise wlc's pick, cached. */
static __always_inline long lblc(const struct rvs_svc *svc, const __u32 *daddr)
{
	struct rvs_lblc_key k = { .svc_id = svc->id };
	__builtin_memcpy(k.daddr, daddr, sizeof(k.daddr));
	__u32 *cached = bpf_map_lookup_elem(&rvs_lblc, &k);
	if (cached && locality_keeps(svc, *cached))
		return *cached;
	long best = least(svc, RVS_PICK_WLC);
	if (best >= 0) {
		__u32 v = best;
		bpf_map_update_elem(&rvs_lblc, &k, &v, BPF_ANY);
	}
	return best;
}

/* A cursor-mode pick: the first dest from the cursor's slot on that is not overloaded (rr
 * and wrr skip overloaded dests, as the kernel's do). */
struct cursor_scan {
	__u32 svc_id;
	__u32 len;
	__u32 start;
	__u32 pad;
	long found;
};

static long cursor_step(__u64 index, void *arg)
{
	struct cursor_scan *x = arg;
	if (index >= x->len || x->len == 0)
		return 1;
	long id = ring_dest(x->svc_id, (x->start + (__u32)index) % x->len);
	if (id < 0 || overloaded(id))
		return 0;
	x->found = id;
	return 1;
}

/* The kernel's hsiphash(&v, 4, key) on 64-bit: SipHash-1-3 of 4 bytes with (key, key). */
static __always_inline __u64 rotl64(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                        \
	do {                                                                            \
		v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);           \
		v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                \
		v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                \
		v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);           \
	} while (0)

static __always_inline __u32 hsiphash32(__u32 v, __u64 key)
{
	__u64 v0 = key ^ 0x736f6d6570736575ULL, v1 = key ^ 0x646f72616e646f6dULL;
	__u64 v2 = key ^ 0x6c7967656e657261ULL, v3 = key ^ 0x7465646279746573ULL;
	__u64 b = (4ULL << 56) | v;
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

/* ip_vs_mh_hashkey: the slot of `offset + port + folded address`. */
static __always_inline __u32 mh_slot(__u32 fold, __u32 port, __u32 offset)
{
	return hsiphash32(offset + port + fold, 2654435761ULL) % RVS_MH_SIZE;
}

/* Whether a scheduler may pick a dest: weight above 0 and not overloaded. */
static __always_inline int dest_available(__u32 id)
{
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &id);
	return d && d->weight > 0 && !overloaded(id);
}

/* mh-fallback: the first available dest found by rehashing with offsets ihash, ihash + 1, ...;
 * none once a slot is empty. */
struct mh_scan {
	__u32 svc_id;
	__u32 fold;
	__u32 port;
	__u32 ihash;
	long found;
};

static long mh_step(__u64 index, void *arg)
{
	struct mh_scan *x = arg;
	__u32 roffset = ((__u32)index + x->ihash) % RVS_MH_SIZE;
	__u32 slot = x->svc_id * RVS_MH_SIZE + mh_slot(x->fold, x->port, roffset);
	__u32 *v = bpf_map_lookup_elem(&rvs_mh, &slot);
	if (!v || *v == 0)
		return 1;
	if (dest_available(*v - 1)) {
		x->found = *v - 1;
		return 1;
	}
	return 0;
}

/* mh (ip_vs_mh.c): the table Rust copied from the core, looked up by the client's address
 * (and port with mh-port). */
static __always_inline long mh(const struct rvs_svc *svc, const struct rvs_conn_key *ck)
{
	struct mh_scan x = {
		.svc_id = svc->id, .fold = addr_fold(ck->saddr),
		.port = svc->len & RVS_MH_PORT ? bpf_ntohs(ck->sport) : 0, .found = -1,
	};
	x.ihash = mh_slot(x.fold, x.port, 0);
	__u32 slot = x.svc_id * RVS_MH_SIZE + x.ihash;
	__u32 *v = bpf_map_lookup_elem(&rvs_mh, &slot);
	if (!v || *v == 0)
		return -1;
	if (dest_available(*v - 1))
		return *v - 1;
	if (!(svc->len & RVS_MH_FALLBACK))
		return -1;
	bpf_loop(RVS_MH_SIZE, mh_step, &x, 0);
	return x.found;
}

/* lblcr's set for one destination address: dest indexes, newest first. */
struct rvs_lblcr_set {
	__u32 n;
	__u32 pad;
	__u64 last_mod;
	__u32 members[RVS_LBLCR_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rvs_lblc_key);
	__type(value, struct rvs_lblcr_set);
} rvs_lblcr SEC(".maps");

/* The set's least loaded member (ip_vs_dest_set_min) or most loaded (ip_vs_dest_set_max). */
struct set_scan {
	struct rvs_lblcr_set *set;
	int most;
	long best;
	__s64 boh, bw;
};

static long set_step(__u64 index, void *arg)
{
	struct set_scan *x = arg;
	__u32 i = index;
	if (i >= RVS_LBLCR_MAX || i >= x->set->n)
		return 1;
	__u32 id = x->set->members[i];
	struct dest_load l;
	if (load_of(id, &l) < 0 || !l.available)
		return 0; /* no longer in the service */
	__s64 w = l.w, oh = l.oh;
	int over = l.overloaded;
	if (x->best < 0) {
		/* min: the first available member; max: the first with weight */
		if (w > 0 && (x->most || !over)) {
			x->best = id;
			x->boh = oh;
			x->bw = w;
		}
		return 0;
	}
	if (x->most ? (w > 0 && x->boh * w < oh * x->bw) : (!over && x->boh * w > oh * x->bw)) {
		x->best = id;
		x->boh = oh;
		x->bw = w;
	}
	return 0;
}

static __always_inline long set_pick(struct rvs_lblcr_set *set, int most)
{
	struct set_scan x = { .set = set, .most = most, .best = -1 };
	bpf_loop(RVS_LBLCR_MAX, set_step, &x, 0);
	return x.best;
}

/* Removes dest `id` from the set, keeping the others' order. */
static __always_inline void set_remove(struct rvs_lblcr_set *s, __u32 id)
{
	__u32 out = 0;
#pragma unroll
	for (int i = 0; i < RVS_LBLCR_MAX; i++) {
		if ((__u32)i < s->n && s->members[i] != id) {
			if (out < RVS_LBLCR_MAX)
				s->members[out & (RVS_LBLCR_MAX - 1)] = s->members[i];
			out++;
		}
	}
	s->n = out;
}

/* Adds dest `id` at the front unless it is a member; a full set drops its oldest. Returns
 * whether it was added. */
static __always_inline int set_insert(struct rvs_lblcr_set *s, __u32 id)
{
#pragma unroll
	for (int i = 0; i < RVS_LBLCR_MAX; i++)
		if ((__u32)i < s->n && s->members[i] == id)
			return 0;
#pragma unroll
	for (int i = RVS_LBLCR_MAX - 1; i > 0; i--)
		s->members[i] = s->members[i - 1];
	s->members[0] = id;
	if (s->n < RVS_LBLCR_MAX)
		s->n++;
	return 1;
}

/* lblcr (ip_vs_lblcr.c): the least loaded member of the destination address's set unless it
 * is overloaded in lblc's sense; then wlc's pick joins the set. A set not changed for 24 h
 * loses its most loaded member. */
static __always_inline long lblcr(const struct rvs_svc *svc, const __u32 *daddr, __u64 now)
{
	struct rvs_lblc_key k = { .svc_id = svc->id };
	__builtin_memcpy(k.daddr, daddr, sizeof(k.daddr));
	struct rvs_lblcr_set *s = bpf_map_lookup_elem(&rvs_lblcr, &k);
	if (!s) {
		long i = least(svc, RVS_PICK_WLC);
		if (i < 0)
			return -1;
		struct rvs_lblcr_set fresh = { .n = 1, .last_mod = now };
		fresh.members[0] = i;
		bpf_map_update_elem(&rvs_lblcr, &k, &fresh, BPF_ANY);
		return i;
	}
	long least_member = set_pick(s, 0);
	if (s->n > 1 && now > s->last_mod + 24ULL * 3600 * 1000000000ULL) {
		long m = set_pick(s, 1);
		if (m >= 0) {
			set_remove(s, m);
			s->last_mod = now;
		}
	}
	if (least_member >= 0 && locality_keeps(svc, least_member))
		return least_member;
	long i = least(svc, RVS_PICK_WLC);
	if (i < 0)
		return -1;
	if (set_insert(s, i))
		s->last_mod = now;
	return i;
}

/* The scheduler's choice for a new flow: the dest's index, or -1 if none is available. */
static __always_inline long schedule(const struct rvs_svc *svc, const struct rvs_conn_key *ck)
{
	__u32 pos;
	if (svc->pick == RVS_PICK_TWOS)
		return twos(svc);
	if (svc->pick == RVS_PICK_LBLC)
		return lblc(svc, ck->daddr);
	if (svc->pick == RVS_PICK_MH)
		return mh(svc, ck);
	if (svc->pick == RVS_PICK_LBLCR)
		return lblcr(svc, ck->daddr, bpf_ktime_get_coarse_ns());
	if (svc->pick >= RVS_PICK_LC)
		return least(svc, svc->pick);
	if (svc->pick == RVS_PICK_CURSOR && svc->len > 0) {
		__u32 sid = svc->id;
		__u32 *cursor = bpf_map_lookup_elem(&rvs_cursors, &sid);
		if (!cursor)
			return -1;
		struct cursor_scan x = {
			.svc_id = svc->id, .len = svc->len,
			.start = __sync_fetch_and_add(cursor, 1) % svc->len, .found = -1,
		};
		bpf_loop(RVS_RING_SIZE, cursor_step, &x, 0);
		return x.found;
	} else if (svc->pick == RVS_PICK_SRC) {
		pos = hash_32_8(addr_fold(ck->saddr));
	} else if (svc->pick == RVS_PICK_SRC_PORT) {
		pos = hash_32_8(addr_fold(ck->saddr) + bpf_ntohs(ck->sport));
	} else if (svc->pick == RVS_PICK_DST) {
		pos = hash_32_8(addr_fold(ck->daddr));
	} else {
		return -1; /* an empty cycle: no dest has weight */
	}
	long id = ring_dest(svc->id, pos & (RVS_RING_SIZE - 1));
	if (id < 0 || overloaded(id))
		return -1; /* sh and dh find no dest when theirs is overloaded */
	return id;
}

/* The persistence template key of a flow: the client network, the service, client port 0. */
static __always_inline struct rvs_conn_key template_key(const struct rvs_conn_key *ck, const __u32 *mask)
{
	struct rvs_conn_key tk = { .dport = ck->dport, .proto = ck->proto, .af = ck->af };
#pragma unroll
	for (int i = 0; i < 4; i++) {
		tk.saddr[i] = ck->saddr[i] & mask[i];
		tk.daddr[i] = ck->daddr[i];
	}
	return tk;
}

/* The service key of a flow. */
static __always_inline struct rvs_svc_key service_key(const struct rvs_conn_key *ck)
{
	struct rvs_svc_key sk = { .port = ck->dport, .proto = ck->proto, .af = ck->af };
	__builtin_memcpy(sk.addr, ck->daddr, sizeof(sk.addr));
	return sk;
}

/* The dest of a live template, refreshed; -1 if there is none, it idled past the persistence
 * timeout, or its dest left the service (a quiesced dest keeps its clients, as in IPVS). */
static __always_inline long template_dest(const struct rvs_svc *svc, const struct rvs_conn_key *tk,
					  __u64 now)
{
	struct rvs_tmpl *t = bpf_map_lookup_elem(&rvs_templates, tk);
	if (!t)
		return -1;
	__u32 dest_id = t->dest;
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &dest_id);
	if (now - t->last_ns > (__u64)svc->persist_timeout * 1000000000ULL || !d || !d->available) {
		bpf_map_delete_elem(&rvs_templates, tk);
		return -1;
	}
	t->last_ns = now;
	return dest_id;
}

/* A packet of a persistent connection keeps its template alive (once per clock tick). */
static __always_inline void touch_template(const struct rvs_conn_key *ck, __u64 now)
{
	struct rvs_svc_key sk = service_key(ck);
	struct rvs_svc *svc = bpf_map_lookup_elem(&rvs_services, &sk);
	if (!svc)
		return;
	struct rvs_conn_key tk = template_key(ck, svc->persist_mask);
	struct rvs_tmpl *t = bpf_map_lookup_elem(&rvs_templates, &tk);
	if (t)
		t->last_ns = now;
}

/* Adds the 16-bit halves of a 32-bit word (raw, as in the packet) to an unfolded sum. */
static __always_inline __u32 sum_word(__u32 s, __u32 w)
{
	return s + (w & 0xffff) + (w >> 16);
}

/* Adds an address of either family (one word for IPv4) to an unfolded sum. */
static __always_inline __u32 sum_addr(__u32 s, __u8 af, const __u32 *a)
{
	s = sum_word(s, a[0]);
	if (af == RVS_AF_INET6) {
		s = sum_word(s, a[1]);
		s = sum_word(s, a[2]);
		s = sum_word(s, a[3]);
	}
	return s;
}

/* The pseudo-header sum of a TCP/UDP segment of `len` bytes (RFC 768, RFC 8200 8.1). */
static __always_inline __u32 pseudo_sum(__u8 af, const __u32 *src, const __u32 *dst, __u8 proto, __u16 len)
{
	__u32 s = sum_addr(sum_addr(0, af, src), af, dst);
	return s + bpf_htons(proto) + bpf_htons(len);
}

/* What a tunnel needs of the packet it wraps. */
struct inner {
	__u16 len;        /* the whole inner packet */
	__u8 tos;         /* IPv4's TOS */
	__u8 sum_known;   /* whether `sum` is known */
	__u32 first_word; /* IPv6's version, traffic class and flow label */
	__u32 sum;        /* the inner packet's one's-complement sum, unfolded */
};

/* The inner packet of a tunnel. Its sum (for --tun-csum) is known without reading the payload
 * when its TCP or UDP checksum is complete: the segment then sums to the complement of its
 * pseudo-header (the kernel's local checksum offload relies on the same), and a valid IPv4
 * header sums to zero. SCTP and checksum-less UDP leave it unknown. */
static __always_inline void inner_of(const struct l3 *h, const struct rvs_conn_key *ck, __u16 *ports,
				     void *data_end, struct inner *in)
{
	__u16 l4len;
	__u32 hsum = 0;
	if (h->ip) {
		in->len = bpf_ntohs(h->ip->tot_len);
		in->tos = h->ip->tos;
		l4len = in->len - sizeof(struct iphdr);
	} else if (h->ip6) {
		__u32 *w = (__u32 *)h->ip6;
		in->first_word = w[0];
		l4len = bpf_ntohs(h->ip6->payload_len);
		in->len = l4len + sizeof(struct ipv6hdr);
		hsum = sum_word(sum_word(0, w[0]), w[1]);
		hsum = sum_addr(sum_addr(hsum, RVS_AF_INET6, ck->saddr), RVS_AF_INET6, ck->daddr);
	} else {
		return;
	}
	int full = ck->proto == IPPROTO_TCP;
	if (ck->proto == IPPROTO_UDP && (void *)(ports + 4) <= data_end && ports[3])
		full = 1;
	if (!full)
		return;
	__u32 pseudo = pseudo_sum(ck->af, ck->saddr, ck->daddr, ck->proto, l4len);
	in->sum = hsum + csum_fold(pseudo); /* the complement of the pseudo-header's sum */
	in->sum_known = 1;
}

/* GUE's header (draft-ietf-intarea-gue): version 0, no control, no options. */
struct gue_hdr {
	__u8 hlen_ctl_ver;
	__u8 proto_ctype;
	__u16 flags;
};

/* Wraps the packet for a tunnel dest: an outer IPv4 or IPv6 header from the director to the
 * real server (IP-in-IP, IPv6-in-IPv6), with GUE's UDP + GUE headers, or a GRE header, after
 * it; with --tun-csum, the UDP or GRE checksum (left out where the inner sum is unknown: a
 * zero UDP checksum, a GRE header without one). */
static __always_inline int encap(struct xdp_md *ctx, const struct rvs_dest *d, const struct rvs_config *cfg,
				 const struct hop *hop, __u8 af, const struct inner *in, __u16 sport)
{
	int csum = (d->tun_flags & RVS_TUN_CSUM) && in->sum_known;
	int extra = 0;
	__u8 next = af == RVS_AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	if (d->tun_type == RVS_TUN_GUE) {
		extra = sizeof(struct udphdr) + sizeof(struct gue_hdr);
		next = IPPROTO_UDP;
	} else if (d->tun_type == RVS_TUN_GRE) {
		extra = csum ? 8 : 4;
		next = IPPROTO_GRE;
	}
	int l3 = af == RVS_AF_INET6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__u16 payload = extra + in->len;
	if (bpf_xdp_adjust_head(ctx, 0 - (l3 + extra)))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	set_macs(eth, hop);
	void *x;
	const __u32 *src;
	if (af == RVS_AF_INET6) {
		struct ipv6hdr *o = (void *)(eth + 1);
		if ((void *)(o + 1) > data_end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		*(__u32 *)o = in->first_word;
		o->payload_len = bpf_htons(payload);
		o->nexthdr = next;
		o->hop_limit = 64;
		__builtin_memcpy(&o->saddr, cfg->tunnel_src6, sizeof(o->saddr));
		__builtin_memcpy(&o->daddr, d->addr, sizeof(o->daddr));
		src = cfg->tunnel_src6;
		x = o + 1;
	} else {
		struct iphdr *o = (void *)(eth + 1);
		if ((void *)(o + 1) > data_end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IP);
		o->version = 4;
		o->ihl = 5;
		o->tos = in->tos;
		o->tot_len = bpf_htons(payload + sizeof(struct iphdr));
		o->id = 0;
		o->frag_off = 0;
		o->ttl = 64;
		o->protocol = next;
		o->check = 0;
		o->saddr = cfg->tunnel_src;
		o->daddr = d->addr[0];
		o->check = ipv4_csum(o);
		src = &cfg->tunnel_src;
		x = o + 1;
	}
	if (d->tun_type == RVS_TUN_GUE) {
		struct udphdr *u = x;
		struct gue_hdr *g = (void *)(u + 1);
		if ((void *)(g + 1) > data_end)
			return XDP_DROP;
		u->source = sport;
		u->dest = d->tun_port;
		u->len = bpf_htons(payload);
		u->check = 0;
		g->hlen_ctl_ver = 0;
		g->proto_ctype = af == RVS_AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
		g->flags = 0;
		if (csum) {
			__u32 s = pseudo_sum(af, src, d->addr, IPPROTO_UDP, payload);
			s = sum_word(sum_word(s, *(__u32 *)u), u->len);
			s = sum_word(s, *(__u32 *)g) + in->sum;
			__u16 c = csum_fold(s);
			u->check = c ? c : 0xffff;
		}
	} else if (d->tun_type == RVS_TUN_GRE) {
		__u16 *g = x;
		if ((void *)(g + 2) > data_end)
			return XDP_DROP;
		g[0] = csum ? bpf_htons(0x8000) : 0;
		g[1] = bpf_htons(af == RVS_AF_INET6 ? ETH_P_IPV6 : ETH_P_IP);
		if (csum) {
			if ((void *)(g + 4) > data_end)
				return XDP_DROP;
			g[2] = 0;
			g[3] = 0;
			g[2] = csum_fold((__u32)g[0] + g[1] + in->sum);
		}
	}
	return send(ctx, hop);
}

SEC("xdp")
int rvs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	struct rvs_conn_key ck = {};
	struct l3 h = {};
	__u16 *ports;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->ihl != 5)
			return XDP_PASS;
		if (ip->frag_off & bpf_htons(0x3fff)) /* fragments are left to the kernel */
			return XDP_PASS;
		h.ip = ip;
		ck.af = RVS_AF_INET;
		ck.proto = ip->protocol;
		ck.saddr[0] = ip->saddr;
		ck.daddr[0] = ip->daddr;
		ports = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		h.ip6 = ip6;
		ck.af = RVS_AF_INET6;
		ck.proto = ip6->nexthdr; /* extension headers (and fragments) are left to the kernel */
		__builtin_memcpy(ck.saddr, &ip6->saddr, sizeof(ck.saddr));
		__builtin_memcpy(ck.daddr, &ip6->daddr, sizeof(ck.daddr));
		ports = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if (ck.proto != IPPROTO_TCP && ck.proto != IPPROTO_UDP && ck.proto != IPPROTO_SCTP)
		return XDP_PASS;
	if ((void *)(ports + 2) > data_end)
		return XDP_PASS;
	ck.sport = ports[0];
	ck.dport = ports[1];

	__u32 zero = 0;
	struct rvs_config *cfg = bpf_map_lookup_elem(&rvs_config, &zero);
	if (!cfg)
		return XDP_PASS;
	/* TCP flags (or what SCTP's first chunk stands for), when the header is all there. */
	__u8 flags = 0;
	if (ck.proto == IPPROTO_TCP) {
		__u8 *fl = (__u8 *)ports + 13;
		if ((void *)(fl + 1) <= data_end)
			flags = *fl;
	} else if (ck.proto == IPPROTO_SCTP) {
		__u8 *chunk = (__u8 *)ports + 12;
		if ((void *)(chunk + 1) <= data_end)
			flags = sctp_flags(*chunk);
	}
	/* Known connections first: their packets need no service lookup. The coarse clock is
	 * enough for timeouts counted in seconds, and cheaper. */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 dest_id;
	int new_conn = 0;
	struct rvs_svc *svc = 0;
	struct rvs_conn *conn = bpf_map_lookup_elem(&rvs_conns, &ck);
	if (conn) {
		__u32 timeout = state_timeout(cfg, conn->state);
		if (now - conn->last_ns > (__u64)timeout * 1000000000ULL) {
			count_conn(conn->dest, conn->state, -1);
			bpf_map_delete_elem(&rvs_conns, &ck); /* expired: schedule anew */
			conn = 0;
		}
	}
	if (!conn) {
		struct rvs_svc_key sk = service_key(&ck);
		svc = bpf_map_lookup_elem(&rvs_services, &sk);
		if (!svc)
			return nat_back(ctx, eth, &h, &ck, ports, data_end);
	}
	if (conn) {
		dest_id = conn->dest;
		if (conn->last_ns != now) {
			conn->last_ns = now;
			if (conn->persist)
				touch_template(&ck, now);
		}
		__u8 st = next_state(conn->state, ck.proto, flags);
		if (st != conn->state) {
			move_conn(dest_id, conn->state, st);
			conn->state = st;
		}
	} else if (svc) {
		struct rvs_conn_key tk = template_key(&ck, svc->persist_mask);
		long held = svc->persist_timeout ? template_dest(svc, &tk, now) : -1;
		if (held >= 0) {
			dest_id = held;
		} else {
			long picked = schedule(svc, &ck);
			if (picked < 0)
				return XDP_DROP; /* no dest available, as IPVS drops */
			dest_id = picked;
			if (svc->persist_timeout) {
				struct rvs_tmpl t = { .dest = dest_id, .last_ns = now };
				bpf_map_update_elem(&rvs_templates, &tk, &t, BPF_ANY);
			}
		}
		struct rvs_conn c = {
			.dest = dest_id, .last_ns = now, .persist = svc->persist_timeout != 0,
			.state = next_state(RVS_ST_NONE, ck.proto, flags),
		};
		bpf_map_update_elem(&rvs_conns, &ck, &c, BPF_ANY);
		count_conn(dest_id, c.state, 1);
		new_conn = 1;
	} else {
		return XDP_PASS;
	}
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &dest_id);
	if (!d || d->method == 0)
		return XDP_DROP;
	struct rvs_stat *st = bpf_map_lookup_elem(&rvs_stats, &dest_id);
	if (st) {
		st->conns += new_conn;
		st->packets += 1;
		st->bytes += (__u64)(data_end - data) - sizeof(struct ethhdr); /* IP bytes, as IPVS counts */
	}

	struct hop hop = {};
	int routed = dest_hop(ctx, d, ck.af, now, eth->h_dest, &hop) == 0;
	if (d->method == RVS_FWD_MASQ) {
		if (new_conn) {
			/* The way back: to the client's next hop by the FIB, else where it came from. */
			struct rvs_conn_key bk = { .sport = d->port, .dport = ck.sport, .proto = ck.proto, .af = ck.af };
			__builtin_memcpy(bk.saddr, d->addr, sizeof(bk.saddr));
			__builtin_memcpy(bk.daddr, ck.saddr, sizeof(bk.daddr));
			struct rvs_nat back = { .vport = ck.dport, .dest = dest_id };
			__builtin_memcpy(back.vip, ck.daddr, sizeof(back.vip));
			struct hop bh = {};
			if (fib_hop(ctx, ck.af, ck.saddr, &bh) == 0) {
				__builtin_memcpy(back.client_mac, bh.dmac, ETH_ALEN);
				__builtin_memcpy(back.smac, bh.smac, ETH_ALEN);
				back.ifindex = bh.ifindex;
			} else {
				__builtin_memcpy(back.client_mac, eth->h_source, ETH_ALEN);
				__builtin_memcpy(back.smac, eth->h_dest, ETH_ALEN);
				back.ifindex = ctx->ingress_ifindex;
			}
			bpf_map_update_elem(&rvs_nat_back, &bk, &back, BPF_ANY);
		}
		nat_l3(&h, ck.proto, ports, data_end, 1, d->addr, d->port);
		if (!routed)
			return XDP_PASS; /* the kernel routes it and resolves the real server's MAC */
		set_macs(eth, &hop);
		return send(ctx, &hop);
	}
	if (!routed)
		return XDP_DROP; /* no next hop known for the real server yet */

	if (d->method == RVS_FWD_ROUTE) {
		set_macs(eth, &hop);
		return send(ctx, &hop);
	}

	struct inner in = {};
	inner_of(&h, &ck, ports, data_end, &in);
	/* GUE's source port: a hash of the flow in the kernel's default ephemeral range, so
	 * routers on the way can spread tunnels (the kernel's udp_flow_src_port does the same). */
	__u32 flow = hash_32_8(addr_fold(ck.saddr) ^ ((__u32)ck.sport << 16 | ck.dport)) << 8;
	flow |= hash_32_8(addr_fold(ck.daddr) + ck.sport);
	__u16 sport = bpf_htons(32768 + flow % 28232);
	return encap(ctx, d, cfg, &hop, ck.af, &in, sport);
}

char _license[] SEC("license") = "GPL";
