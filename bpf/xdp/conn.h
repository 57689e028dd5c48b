/* SPDX-License-Identifier: GPL-2.0 */
/* Connections: states from TCP flags and SCTP chunks, timeouts, IPVS's counts and overload flag, persistence templates. */
#ifndef RVS_XDP_CONN_H
#define RVS_XDP_CONN_H

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

/* CLOCK_MONOTONIC in ns, to the kernel's tick: jiffies is one load the verifier inlines, where
 * bpf_ktime_get_coarse_ns is a helper call that cost 18 of an established packet's 94 ns
 * (BPF_PROG_TEST_RUN, examples/prog_cost.rs). Timeouts are counted in seconds, so a tick
 * (1-10 ms) is precision enough. */
static __always_inline __u64 clock_ns(const struct rvs_config *cfg)
{
	return bpf_jiffies64() * cfg->tick_ns + cfg->clock_offset;
}

/* The connection table: IPv4 flows in rvs_conns4 under a 16-byte key, IPv6 ones in
 * rvs_conns. */
static __always_inline struct rvs_conn_key4 conn_key4(const struct rvs_conn_key *ck)
{
	struct rvs_conn_key4 k = {
		.saddr = ck->saddr[0], .daddr = ck->daddr[0],
		.sport = ck->sport, .dport = ck->dport, .proto = ck->proto,
	};
	return k;
}

static __always_inline struct rvs_conn *conn_find(const struct rvs_conn_key *ck)
{
	if (ck->af == RVS_AF_INET) {
		struct rvs_conn_key4 k = conn_key4(ck);
		return bpf_map_lookup_elem(&rvs_conns4, &k);
	}
	return bpf_map_lookup_elem(&rvs_conns, ck);
}

static __always_inline void conn_put(const struct rvs_conn_key *ck, const struct rvs_conn *c)
{
	if (ck->af == RVS_AF_INET) {
		struct rvs_conn_key4 k = conn_key4(ck);
		bpf_map_update_elem(&rvs_conns4, &k, c, BPF_ANY);
	} else {
		bpf_map_update_elem(&rvs_conns, ck, c, BPF_ANY);
	}
}

static __always_inline void conn_forget(const struct rvs_conn_key *ck)
{
	if (ck->af == RVS_AF_INET) {
		struct rvs_conn_key4 k = conn_key4(ck);
		bpf_map_delete_elem(&rvs_conns4, &k);
	} else {
		bpf_map_delete_elem(&rvs_conns, ck);
	}
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

#endif
