/* SPDX-License-Identifier: GPL-2.0 */
/* Tunnels: IP-in-IP, IPv6-in-IPv6, GUE and GRE encapsulation, with checksums from the inner packet. */
#ifndef RVS_XDP_TUNNEL_H
#define RVS_XDP_TUNNEL_H

/* What a tunnel needs of the packet it wraps. */
struct inner {
	__u16 len;        /* the whole inner packet */
	__u8 tos;         /* IPv4's TOS */
	__u8 sum_known;   /* whether `sum` is known */
	__u8 df;          /* IPv4's don't-fragment flag */
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
		in->df = (h->ip->frag_off & bpf_htons(0x4000)) != 0;
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

/* The bytes a tunnel dest's headers add in front of the inner packet. */
static __always_inline int tunnel_overhead(const struct rvs_dest *d, __u8 af, int csum)
{
	int l3 = af == RVS_AF_INET6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	if (d->tun_type == RVS_TUN_GUE)
		return l3 + sizeof(struct udphdr) + sizeof(struct gue_hdr);
	if (d->tun_type == RVS_TUN_GRE)
		return l3 + (csum ? 8 : 4);
	return l3;
}

/* What of the original packet an ICMP error quotes: its IP header and 8 bytes after it. */
#define QUOTE4 (sizeof(struct iphdr) + 8)
#define QUOTE6 (sizeof(struct ipv6hdr) + 8)

/* Addresses a reply to where the frame `old` (its Ethernet header, possibly overlapping) came
 * from. */
static __always_inline void reply_macs(struct ethhdr *eth, const struct ethhdr *old)
{
	__u8 macs[2 * ETH_ALEN];
	__builtin_memcpy(macs, old->h_source, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, old->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, macs, ETH_ALEN);
	__builtin_memcpy(eth->h_source, macs + ETH_ALEN, ETH_ALEN);
}

/* Turns the frame into an ICMP "fragmentation needed" (IPv4) or ICMPv6 "packet too big" error
 * from the VIP back to the client, quoting the packet's IP header and the 8 bytes after it and
 * giving `mtu`: what IPVS sends when a tunnel's headers would not fit (the client's path MTU
 * discovery then sends smaller packets). The new headers go in front of the quoted ones, in
 * place; the rest is cut off. Returns XDP_TX, or XDP_DROP if the frame is too short. */
static __always_inline int too_big(struct xdp_md *ctx, __u8 af, __u32 mtu)
{
	int v6 = af == RVS_AF_INET6;
	int ip_len = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	int quote = ip_len + 8;
	/* Room for the new IP and ICMP headers between the new Ethernet header and the old IP
	 * header (the old Ethernet header is overwritten). */
	if (bpf_xdp_adjust_head(ctx, 0 - (ip_len + 8)))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int total = sizeof(struct ethhdr) + ip_len + 8 + quote;
	if (data + total > data_end)
		return XDP_DROP;
	if (bpf_xdp_adjust_tail(ctx, total - (int)bpf_xdp_get_buff_len(ctx)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if (v6) {
		struct ethhdr *old = data + sizeof(struct ipv6hdr) + 8;
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u8 *icmp = (void *)(ip6 + 1);
		struct ipv6hdr *orig = (void *)(icmp + 8);
		if ((void *)(orig + 1) + 8 > data_end)
			return XDP_DROP;
		reply_macs(eth, old);
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		*(__u32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(8 + QUOTE6);
		ip6->nexthdr = 58; /* ICMPv6 */
		ip6->hop_limit = 64;
		ip6->saddr = orig->daddr;
		ip6->daddr = orig->saddr;
		icmp[0] = 2; /* packet too big */
		icmp[1] = 0;
		*(__u16 *)(icmp + 2) = 0;
		*(__u32 *)(icmp + 4) = bpf_htonl(mtu);
		__u32 s = pseudo_sum(RVS_AF_INET6, ip6->saddr.in6_u.u6_addr32, ip6->daddr.in6_u.u6_addr32, 58,
				     8 + QUOTE6);
		__u16 *w = (__u16 *)icmp;
#pragma unroll
		for (int i = 0; i < (8 + QUOTE6) / 2; i++)
			s += w[i];
		*(__u16 *)(icmp + 2) = csum_fold(s);
		return XDP_TX;
	}
	struct ethhdr *old = data + sizeof(struct iphdr) + 8;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *icmp = (void *)(ip + 1);
	struct iphdr *orig = (void *)(icmp + 8);
	if ((void *)(orig + 1) + 8 > data_end)
		return XDP_DROP;
	reply_macs(eth, old);
	eth->h_proto = bpf_htons(ETH_P_IP);
	__u32 client = orig->saddr, vip = orig->daddr;
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(sizeof(struct iphdr) + 8 + QUOTE4);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = vip;
	ip->daddr = client;
	ip->check = ipv4_csum(ip);
	icmp[0] = 3; /* destination unreachable */
	icmp[1] = 4; /* fragmentation needed and DF set */
	*(__u16 *)(icmp + 2) = 0;
	*(__u16 *)(icmp + 4) = 0;
	*(__u16 *)(icmp + 6) = bpf_htons(mtu);
	__u32 s = 0;
	__u16 *w = (__u16 *)icmp;
#pragma unroll
	for (int i = 0; i < (8 + QUOTE4) / 2; i++)
		s += w[i];
	*(__u16 *)(icmp + 2) = csum_fold(s);
	return XDP_TX;
}

/* Whether the tunnelled packet would exceed the egress MTU: the MTU left for the inner packet
 * if so (IPVS answers those with an ICMP error when the client forbade fragments), else 0. */
static __always_inline __u32 tunnel_mtu_exceeded(struct xdp_md *ctx, const struct hop *hop, int overhead)
{
	__u32 mtu = 0;
	if (bpf_check_mtu(ctx, hop->ifindex, &mtu, overhead, 0) != BPF_MTU_CHK_RET_FRAG_NEEDED)
		return 0;
	return mtu > (__u32)overhead ? mtu - overhead : 68;
}

/* Wraps the packet for a tunnel dest: an outer IPv4 or IPv6 header from the director to the
 * real server (IP-in-IP, IPv6-in-IPv6), with GUE's UDP + GUE headers, or a GRE header, after
 * it; with --tun-csum, the UDP or GRE checksum (left out where the inner sum is unknown: a
 * zero UDP checksum, a GRE header without one). */
static __always_inline int encap(struct xdp_md *ctx, const struct rvs_dest *d, const struct rvs_config *cfg,
				 const struct hop *hop, __u8 af, const struct inner *in, __u16 sport)
{
	int csum = (d->tun_flags & RVS_TUN_CSUM) && in->sum_known;
	__u8 next = af == RVS_AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	if (d->tun_type == RVS_TUN_GUE)
		next = IPPROTO_UDP;
	else if (d->tun_type == RVS_TUN_GRE)
		next = IPPROTO_GRE;
	int l3 = af == RVS_AF_INET6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	int overhead = tunnel_overhead(d, af, csum);
	/* The MTU cached with the next hop answers for most packets without a helper call; a
	 * packet it does not clear is checked against the interface's MTU now. (A frame longer
	 * than its IP header says may pass here and is then dropped by the interface.) */
	__u32 room = in->len + overhead > d->nh_mtu ? tunnel_mtu_exceeded(ctx, hop, overhead) : 0;
	if (room) {
		if (af == RVS_AF_INET && !in->df)
			return XDP_DROP; /* IPVS would let the outer packet be fragmented */
		return too_big(ctx, af, room);
	}
	__u16 payload = overhead - l3 + in->len;
	if (bpf_xdp_adjust_head(ctx, 0 - overhead))
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

#endif
