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
 * or removed dests get no new flows, their open flows go on). Its parts are the headers under xdp/, in
 * the order they are included. */
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

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#include "xdp/maps.h"
#include "xdp/hop.h"
#include "xdp/csum.h"
#include "xdp/nat.h"
#include "xdp/conn.h"
#include "xdp/sched.h"
#include "xdp/tunnel.h"

SEC("xdp")
int rvs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return verdict(RVS_V_PASSED, XDP_PASS);
	struct rvs_conn_key ck = {};
	struct l3 h = {};
	__u16 *ports;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->ihl != 5)
			return verdict(RVS_V_PASSED, XDP_PASS);
		if (ip->frag_off & bpf_htons(0x3fff)) /* fragments are left to the kernel */
			return verdict(RVS_V_PASSED, XDP_PASS);
		h.ip = ip;
		ck.af = RVS_AF_INET;
		ck.proto = ip->protocol;
		ck.saddr[0] = ip->saddr;
		ck.daddr[0] = ip->daddr;
		ports = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return verdict(RVS_V_PASSED, XDP_PASS);
		h.ip6 = ip6;
		ck.af = RVS_AF_INET6;
		ck.proto = ip6->nexthdr; /* extension headers (and fragments) are left to the kernel */
		__builtin_memcpy(ck.saddr, &ip6->saddr, sizeof(ck.saddr));
		__builtin_memcpy(ck.daddr, &ip6->daddr, sizeof(ck.daddr));
		ports = (void *)(ip6 + 1);
	} else {
		return verdict(RVS_V_PASSED, XDP_PASS);
	}
	if (ck.proto != IPPROTO_TCP && ck.proto != IPPROTO_UDP && ck.proto != IPPROTO_SCTP)
		return verdict(RVS_V_PASSED, XDP_PASS);
	if ((void *)(ports + 2) > data_end)
		return verdict(RVS_V_PASSED, XDP_PASS);
	ck.sport = ports[0];
	ck.dport = ports[1];

	__u32 zero = 0;
	struct rvs_config *cfg = bpf_map_lookup_elem(&rvs_config, &zero);
	if (!cfg)
		return verdict(RVS_V_PASSED, XDP_PASS);
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
	/* Known connections first: their packets need no service lookup. */
	__u64 now = clock_ns(cfg);
	__u32 dest_id;
	int new_conn = 0;
	struct rvs_svc *svc = 0;
	struct rvs_conn *conn = conn_find(&ck);
	if (conn) {
		__u32 timeout = state_timeout(cfg, conn->state);
		if (now - conn->last_ns > (__u64)timeout * 1000000000ULL) {
			count_conn(conn->dest, conn->state, -1);
			conn_forget(&ck); /* expired: schedule anew */
			conn = 0;
		}
	}
	if (!conn) {
		struct rvs_svc_key sk = service_key(&ck);
		svc = bpf_map_lookup_elem(&rvs_services, &sk);
		if (!svc) {
			int r = nat_back(ctx, eth, &h, &ck, ports, data_end);
			return verdict(r == XDP_PASS ? RVS_V_PASSED : RVS_V_NAT_REPLY, r);
		}
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
			long picked = schedule(svc, &ck, now);
			if (picked < 0)
				return verdict(RVS_V_NO_DEST, XDP_DROP); /* as IPVS drops */
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
		conn_put(&ck, &c);
		count_conn(dest_id, c.state, 1);
		new_conn = 1;
	} else {
		return verdict(RVS_V_PASSED, XDP_PASS);
	}
	struct rvs_dest *d = bpf_map_lookup_elem(&rvs_dests, &dest_id);
	if (!d || d->method == 0)
		return verdict(RVS_V_BAD_DEST, XDP_DROP);
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
			return verdict(RVS_V_TO_KERNEL, XDP_PASS); /* the kernel routes it */
		set_macs(eth, &hop);
		return verdict(RVS_V_FORWARDED, send(ctx, &hop));
	}
	if (!routed)
		return verdict(RVS_V_NO_HOP, XDP_DROP); /* no next hop known for the real server */

	if (d->method == RVS_FWD_ROUTE) {
		set_macs(eth, &hop);
		return verdict(RVS_V_FORWARDED, send(ctx, &hop));
	}

	struct inner in = {};
	inner_of(&h, &ck, ports, data_end, &in);
	/* GUE's source port: a hash of the flow in the kernel's default ephemeral range, so
	 * routers on the way can spread tunnels (the kernel's udp_flow_src_port does the same). */
	__u16 sport = 0;
	if (d->tun_type == RVS_TUN_GUE) {
		__u32 flow = hash_32_8(addr_fold(ck.saddr) ^ ((__u32)ck.sport << 16 | ck.dport)) << 8;
		flow |= hash_32_8(addr_fold(ck.daddr) + ck.sport);
		sport = bpf_htons(32768 + flow % 28232);
	}
	int r = encap(ctx, d, cfg, &hop, ck.af, &in, sport);
	return verdict(r == XDP_DROP ? RVS_V_TUN_DROP : RVS_V_TUNNELLED, r);
}

/* The clock's calibration: run by BPF_PROG_TEST_RUN, this writes bpf_jiffies64() into the
 * frame's first eight bytes, for rvs-xdp to set tick_ns and clock_offset from. */
SEC("xdp")
int rvs_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(__u64) > data_end)
		return XDP_ABORTED;
	__u64 now = bpf_jiffies64();
	__builtin_memcpy(data, &now, sizeof(now));
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
