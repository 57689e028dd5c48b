/* SPDX-License-Identifier: GPL-2.0 */
/* The schedulers, with the kernel's semantics: rings, buckets, the mh table, and the scans of the connection-counting ones. */
#ifndef RVS_XDP_SCHED_H
#define RVS_XDP_SCHED_H

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
static __always_inline long schedule(const struct rvs_svc *svc, const struct rvs_conn_key *ck, __u64 now)
{
	__u32 pos;
	if (svc->pick == RVS_PICK_TWOS)
		return twos(svc);
	if (svc->pick == RVS_PICK_LBLC)
		return lblc(svc, ck->daddr);
	if (svc->pick == RVS_PICK_MH)
		return mh(svc, ck);
	if (svc->pick == RVS_PICK_LBLCR)
		return lblcr(svc, ck->daddr, now);
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

#endif
