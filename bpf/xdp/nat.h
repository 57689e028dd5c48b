/* SPDX-License-Identifier: GPL-2.0 */
/* NAT: rewriting addresses and ports both ways. */
#ifndef RVS_XDP_NAT_H
#define RVS_XDP_NAT_H

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

#endif
