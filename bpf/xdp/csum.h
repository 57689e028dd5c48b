/* SPDX-License-Identifier: GPL-2.0 */
/* Internet checksums: folding, IPv4 headers, RFC 1624 incremental updates, pseudo-headers. */
#ifndef RVS_XDP_CSUM_H
#define RVS_XDP_CSUM_H

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

#endif
