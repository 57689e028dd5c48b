// SPDX-License-Identifier: GPL-2.0
/* The real-server side of tunnel mode, for kernels without the ipip, ip6_tunnel, fou or gre
 * modules: a tc ingress classifier that strips the outer headers of tunnelled packets whose
 * inner destination is one of the VIPs (rvs_vips), so the kernel delivers the inner packet to
 * the VIP on lo. It takes IP-in-IP, IPv6-in-IPv6 (and either inside the other), GUE to the
 * configured UDP port (rvs_decap_config) and GRE without keys or sequence numbers, as the
 * director's XDP program sends them. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "include/rvs_structs.h"

/* Debian 12's UAPI headers (6.1) predate these flags (6.3); the kernel here has them. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV6
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rvs_vip_key);
	__type(value, __u8);
} rvs_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_decap_config);
} rvs_decap_config SEC(".maps");

/* The inner protocol (IPPROTO_IPIP or IPPROTO_IPV6) of the tunnel header at `l4`, and how many
 * bytes of it to strip; 0 if it is not a tunnel this program takes. */
static __always_inline __u8 tunnel_of(__u8 proto, void *l4, void *data_end, __u32 *strip)
{
	if (proto == IPPROTO_IPIP || proto == IPPROTO_IPV6)
		return proto;
	if (proto == IPPROTO_UDP) {
		struct udphdr *u = l4;
		__u8 *gue = (void *)(u + 1);
		if ((void *)(gue + 4) > data_end)
			return 0;
		__u32 zero = 0;
		struct rvs_decap_config *cfg = bpf_map_lookup_elem(&rvs_decap_config, &zero);
		if (!cfg || !cfg->gue_port || u->dest != cfg->gue_port || gue[0] != 0)
			return 0; /* not GUE version 0 without options to our port */
		*strip += sizeof(struct udphdr) + 4;
		return gue[1] == IPPROTO_IPIP || gue[1] == IPPROTO_IPV6 ? gue[1] : 0;
	}
	if (proto == IPPROTO_GRE) {
		__u16 *g = l4;
		if ((void *)(g + 2) > data_end)
			return 0;
		__u16 flags = bpf_ntohs(g[0]);
		if (flags & 0x7fff) /* keys, sequence numbers, other versions: not ours */
			return 0;
		*strip += flags & 0x8000 ? 8 : 4;
		if (g[1] == bpf_htons(ETH_P_IP))
			return IPPROTO_IPIP;
		return g[1] == bpf_htons(ETH_P_IPV6) ? IPPROTO_IPV6 : 0;
	}
	return 0;
}

SEC("classifier")
int rvs_tc_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	__u8 proto;
	__u32 strip;
	void *l4;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *outer = (void *)(eth + 1);
		if ((void *)(outer + 1) > data_end || outer->ihl != 5 || outer->frag_off & bpf_htons(0x3fff))
			return TC_ACT_OK;
		proto = outer->protocol;
		strip = sizeof(*outer);
		l4 = outer + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *outer = (void *)(eth + 1);
		if ((void *)(outer + 1) > data_end)
			return TC_ACT_OK;
		proto = outer->nexthdr;
		strip = sizeof(*outer);
		l4 = outer + 1;
	} else {
		return TC_ACT_OK;
	}
	__u8 inner = tunnel_of(proto, l4, data_end, &strip);
	if (!inner || strip > 64)
		return TC_ACT_OK;
	struct rvs_vip_key k = {};
	void *in = (void *)(eth + 1) + strip;
	if (inner == IPPROTO_IPIP) {
		struct iphdr *ip = in;
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		k.af = RVS_AF_INET;
		k.addr[0] = ip->daddr;
	} else {
		struct ipv6hdr *ip6 = in;
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		k.af = RVS_AF_INET6;
		__builtin_memcpy(k.addr, &ip6->daddr, sizeof(k.addr));
	}
	if (!bpf_map_lookup_elem(&rvs_vips, &k))
		return TC_ACT_OK;
	__u64 flags = inner == IPPROTO_IPIP ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	if (bpf_skb_adjust_room(skb, -(int)strip, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT;
	/* The frame now carries the inner packet: say which family it is. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	eth->h_proto = bpf_htons(inner == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
