// SPDX-License-Identifier: GPL-2.0
/* The real-server side of tunnel mode, for kernels without the ipip module: a tc ingress
 * classifier that strips the outer IPv4 header of IP-in-IP packets whose inner destination is
 * one of the VIPs (rvs_vips), so the kernel delivers the inner packet to the VIP on lo. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Debian 12's UAPI headers (6.1) predate this flag (6.3); the kernel here has it. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* VIP, network order */
	__type(value, __u8);
} rvs_vips SEC(".maps");

SEC("classifier")
int rvs_tc_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end || outer->ihl != 5 || outer->protocol != IPPROTO_IPIP)
		return TC_ACT_OK;
	struct iphdr *inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return TC_ACT_OK;
	__u32 vip = inner->daddr;
	if (!bpf_map_lookup_elem(&rvs_vips, &vip))
		return TC_ACT_OK;
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
