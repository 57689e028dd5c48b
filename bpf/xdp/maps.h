/* SPDX-License-Identifier: GPL-2.0 */
/* The XDP program's maps, shared by its parts (rvs-xdp opens them by name). */
#ifndef RVS_XDP_MAPS_H
#define RVS_XDP_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, struct rvs_svc_key);
	__type(value, struct rvs_svc);
} rvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_SERVICES * RVS_RING_SIZE);
	__type(key, __u32);
	__type(value, __u32); /* dest index + 1; 0 = no dest */
} rvs_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_dest);
} rvs_dests SEC(".maps");

/* The next ring position of cursor-mode services, shared by all CPUs (atomic increments). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} rvs_cursors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RVS_CONN_TABLE);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_conn);
} rvs_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RVS_CONN_TABLE);
	__type(key, struct rvs_conn_key4);
	__type(value, struct rvs_conn);
} rvs_conns4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RVS_CONN_TABLE);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_nat);
} rvs_nat_back SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RVS_CONN_TABLE);
	__type(key, struct rvs_conn_key);
	__type(value, struct rvs_tmpl);
} rvs_templates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_count);
} rvs_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_SERVICES * RVS_MH_SIZE);
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
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_stat);
} rvs_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_config);
} rvs_config SEC(".maps");

/* Packets per verdict (RVS_V_*), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_VERDICTS);
	__type(key, __u32);
	__type(value, __u64);
} rvs_verdicts SEC(".maps");

/* Counts a packet's verdict and returns its XDP action. */
static __always_inline int verdict(__u32 why, int action)
{
	__u64 *n = bpf_map_lookup_elem(&rvs_verdicts, &why);
	if (n)
		*n += 1;
	return action;
}

/* The interfaces the program runs on, by ifindex: frames leave by another one through here. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} rvs_tx_ports SEC(".maps");


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

#endif
