/* SPDX-License-Identifier: GPL-2.0 */
/* Next hops: the kernel's FIB (bpf_fib_lookup), cached per dest, and how a frame leaves. */
#ifndef RVS_XDP_HOP_H
#define RVS_XDP_HOP_H

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

/* A dest's next-hop stamps count the clock in units of 2^20 ns (about 1.05 ms). */
#define NH_SHIFT 20
#define NH_REFRESH (1000000000U >> NH_SHIFT) /* a found next hop is kept about a second */
#define NH_RETRY (100000000U >> NH_SHIFT)    /* a missing one is looked for again in 0.1 s */
#define NH_GRACE (500000000U >> NH_SHIFT)    /* a found one outlives a failed lookup by 0.5 s */

/* The next hop of a dest: the FIB's answer, kept in the dest's entry for a second (no answer
 * for a tenth, so a neighbour the kernel just resolved is taken up soon) with the egress
 * interface's MTU; without one, the MAC rvs-xdp read from the neighbour table, out the
 * ingress interface (whose MAC the frame was sent to). -1 if neither is known. */
static __always_inline int dest_hop(struct xdp_md *ctx, struct rvs_dest *d, __u8 af, __u64 now,
				    const __u8 *ingress_mac, struct hop *h)
{
	__u32 t = now >> NH_SHIFT;
	if (d->nh_mtu == 0 || t - d->nh_stamp > NH_REFRESH) {
		struct hop f = {};
		if (fib_hop(ctx, af, d->addr, &f) == 0) {
			__builtin_memcpy(d->nh_smac, f.smac, ETH_ALEN);
			__builtin_memcpy(d->nh_dmac, f.dmac, ETH_ALEN);
			d->nh_ifindex = f.ifindex;
			d->nh_stamp = t;
		} else if (d->nh_ifindex && d->nh_mtu && t - d->nh_stamp <= NH_REFRESH + NH_GRACE) {
			/* A next hop found a moment ago whose neighbour entry is being renewed (rvs-xdp
			 * re-resolves them): keep it; the next packet asks the FIB again. */
			goto cached;
		} else {
			d->nh_ifindex = 0;
			d->nh_stamp = t - NH_REFRESH + NH_RETRY;
		}
		/* The MTU of the interface the frame leaves by (0: the ingress one). */
		__u32 mtu = 0;
		bpf_check_mtu(ctx, d->nh_ifindex, &mtu, 0, 0);
		d->nh_mtu = mtu ? mtu : 1;
	}
cached:
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

#endif
