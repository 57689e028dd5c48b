#!/usr/bin/env python3
"""Reference scheduler decisions, worked out from the Linux kernel's IPVS sources (6.1).

Each function below is a line-by-line port of the kernel C it names, written independently of
rvs's Rust code, so the two can be checked against each other. Run it to regenerate
traces.json:  python3 testdata/sched/reference.py > testdata/sched/traces.json
"""
import ipaddress
import json

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1


def rol64(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK64


def sipround(v0, v1, v2, v3):
    # SIPHASH_PERMUTATION, include/linux/siphash.h
    v0 = (v0 + v1) & MASK64; v1 = rol64(v1, 13); v1 ^= v0; v0 = rol64(v0, 32)
    v2 = (v2 + v3) & MASK64; v3 = rol64(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & MASK64; v3 = rol64(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & MASK64; v1 = rol64(v1, 17); v1 ^= v2; v2 = rol64(v2, 32)
    return v0, v1, v2, v3


def hsiphash_1u32(first, key):
    """lib/siphash.c, BITS_PER_LONG == 64: HPREAMBLE(4); b |= first; HPOSTAMBLE."""
    k0 = k1 = key  # hsiphash_key_t key[2], both set to the same constant by ip_vs_mh.c
    v0 = 0x736f6d6570736575 ^ k0
    v1 = 0x646f72616e646f6d ^ k1
    v2 = 0x6c7967656e657261 ^ k0
    v3 = 0x7465646279746573 ^ k1
    b = (4 << 56) | (first & MASK32)
    v3 ^= b
    v0, v1, v2, v3 = sipround(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xff
    for _ in range(3):
        v0, v1, v2, v3 = sipround(v0, v1, v2, v3)
    return (v0 ^ v1 ^ v2 ^ v3) & MASK32


def hash_32(val, bits):
    """include/linux/hash.h: (val * GOLDEN_RATIO_32) >> (32 - bits)."""
    return ((val * 0x61C88647) & MASK32) >> (32 - bits)


def addr_fold(addr):
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return int(ip)
    n = int(ip)
    words = [(n >> (96 - 32 * i)) & MASK32 for i in range(4)]
    return words[0] ^ words[1] ^ words[2] ^ words[3]


# ---- ip_vs_sh.c ----------------------------------------------------------------------------
SH_BITS = 8
SH_SIZE = 1 << SH_BITS


def sh_hashkey(addr, port, offset):
    return (offset + hash_32((port + addr_fold(addr)) & MASK32, SH_BITS)) & (SH_SIZE - 1)


def sh_reassign(weights):
    """ip_vs_sh_reassign: round robin over the list, each dest `weight` buckets in a row."""
    if not weights:
        return [None] * SH_SIZE
    table, p, d_count = [], 0, 0
    for _ in range(SH_SIZE):
        table.append(p)
        d_count += 1
        if d_count >= weights[p]:
            p = (p + 1) % len(weights)
            d_count = 0
    return table


def sh_schedule(table, weights, addr, port, fallback):
    avail = lambda i: weights[i] > 0
    ihash = sh_hashkey(addr, port, 0)
    d = table[ihash]
    if d is None:
        return None
    if avail(d):
        return d
    if not fallback:
        return None
    for offset in range(SH_SIZE):
        roffset = (offset + ihash) % SH_SIZE
        d = table[sh_hashkey(addr, port, roffset)]
        if d is None:
            return None
        if avail(d):
            return d
    return None


# ---- ip_vs_dh.c ----------------------------------------------------------------------------
def dh_schedule(n, weights, daddr):
    table = [i % n for i in range(256)] if n else [None] * 256
    d = table[hash_32(addr_fold(daddr), 8)]
    return d if d is not None and weights[d] > 0 else None


# ---- ip_vs_mh.c ----------------------------------------------------------------------------
MH_SIZE = 4093
MH_BITS = 12 // 2
KEY1, KEY2 = 2654435761, 2654446892


def mh_hashkey(addr, port, key, offset):
    return hsiphash_1u32((offset + port + addr_fold(addr)) & MASK32, key)


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def fls(x):
    return x.bit_length()


def mh_populate(dests):
    """ip_vs_mh_gcd_weight + ip_vs_mh_shift_weight + ip_vs_mh_permutate + ip_vs_mh_populate.
    dests: list of (addr, port, last_weight) in list order."""
    g = 0
    for _, _, w in dests:
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    table = [None] * MH_SIZE
    if g < 1:
        return table
    mw = max(w for _, _, w in dests) // g
    rshift = max(fls(mw) - MH_BITS, 0)
    setup = []
    for addr, port, lw in dests:
        offset = mh_hashkey(addr, port, KEY1, 0) % MH_SIZE
        skip = mh_hashkey(addr, port, KEY2, 0) % (MH_SIZE - 1) + 1
        turns = (lw // g) >> rshift
        if turns == 0:
            turns = 1 if lw != 0 else 0
        setup.append([offset, skip, offset, turns])
    taken = [False] * MH_SIZE
    n = 0
    while n < MH_SIZE:
        i, dt_count = 0, 0
        while i < len(setup):
            ds = setup[i]
            if ds[3] < 1:
                i += 1
                continue
            c = ds[2]
            while taken[c]:
                ds[2] += ds[1]
                if ds[2] >= MH_SIZE:
                    ds[2] -= MH_SIZE
                c = ds[2]
            taken[c] = True
            table[c] = i
            n += 1
            if n == MH_SIZE:
                return table
            dt_count += 1
            if dt_count >= ds[3]:
                dt_count = 0
                i += 1
    return table


def mh_schedule(table, weights, addr, port, fallback):
    avail = lambda i: weights[i] > 0
    ihash = mh_hashkey(addr, port, KEY1, 0) % MH_SIZE
    d = table[ihash]
    if d is None:
        return None
    if avail(d):
        return d
    if not fallback:
        return None
    for offset in range(MH_SIZE):
        roffset = (offset + ihash) % MH_SIZE
        d = table[mh_hashkey(addr, port, KEY1, roffset) % MH_SIZE]
        if d is None:
            return None
        if avail(d):
            return d
    return None


# ---- ip_vs_wrr.c ---------------------------------------------------------------------------
def wrr_sequence(weights, n):
    """A service that already has these dests when it gets wrr (ip_vs_wrr_init_svc: an edit
    to -s wrr), then n picks of ip_vs_wrr_schedule; picks are list positions."""
    svc = WrrService()
    svc.names, svc.weights = list(range(len(weights))), list(weights)
    svc.init_svc()
    return [svc.schedule() for _ in range(n)]


def wrr_added_sequence(weights, n):
    """A wrr service created empty whose dests are added last to first (so the list order is
    `weights`'s), each add running ip_vs_wrr_dest_changed; then n picks."""
    events = [["add", i, w] for i, w in reversed(list(enumerate(weights)))] + [["pick", n]]
    return replay(WrrService(), events)


# ---- ip_vs_rr.c ----------------------------------------------------------------------------
def rr_sequence(weights, n):
    cl, out = None, []
    for _ in range(n):
        order = list(range(0 if cl is None else cl + 1, len(weights)))
        if cl is not None:
            order += list(range(0, cl + 1))
        hit = next((i for i in order if weights[i] > 0), None)
        if hit is not None:
            cl = hit
        out.append(hit)
    return out


# ---- change by change: ip_vs_ctl.c's add/edit/del hooks over one service's life ----------
class WrrService:
    """A service's dest list (kernel list order: newest first) and ip_vs_wrr's mark, driven
    through the hooks ip_vs_ctl.c calls: init_service (ip_vs_wrr_init_svc), add_dest /
    upd_dest / del_dest (all ip_vs_wrr_dest_changed), and ip_vs_wrr_schedule."""

    def __init__(self):
        self.names, self.weights = [], []
        self.init_svc()

    def gcd_weight(self):
        g = 0
        for w in self.weights:
            if w > 0:
                g = gcd(w, g) if g > 0 else w
        return g if g else 1

    def max_weight(self):
        return max(self.weights + [0])

    def init_svc(self):
        self.cl = None  # the list head
        self.di = self.gcd_weight()
        self.mw = self.max_weight() - (self.di - 1)
        self.cw = self.mw

    def dest_changed(self):
        self.cl = None
        self.di = self.gcd_weight()
        self.mw = self.max_weight() - (self.di - 1)
        if self.cw > self.mw or not self.cw:
            self.cw = self.mw
        elif self.di > 1:
            self.cw = (self.cw // self.di) * self.di + 1

    def add(self, name, weight):
        # __ip_vs_update_dest(add=1): list_add_rcu at the head, then sched->add_dest.
        self.names.insert(0, name)
        self.weights.insert(0, weight)
        self.dest_changed()

    def edit(self, name, weight):
        # __ip_vs_update_dest(add=0): the new weight is set, then sched->upd_dest.
        self.weights[self.names.index(name)] = weight
        self.dest_changed()

    def delete(self, name):
        # __ip_vs_unlink_dest: list_del_rcu, then sched->del_dest.
        i = self.names.index(name)
        del self.names[i], self.weights[i]
        self.dest_changed()

    def schedule(self):
        # dest = mark->cl; list_for_each_entry_continue starts after it; None is the head.
        dest = self.cl
        if self.mw == 0:
            self.cl = dest
            return None  # err_noavail
        last, stop, last_pass, restarted = dest, None, False, False
        while True:
            start = 0 if dest is None else dest + 1
            for i in range(start, len(self.weights)):
                dest = i
                if self.weights[i] >= self.cw:
                    self.cl = i  # found
                    return self.names[i]
                if i == stop:
                    self.cl = i  # err_over
                    return None
            dest = None  # the loop ran off the end: dest is the head again
            self.cw -= self.di
            if self.cw <= 0:
                self.cw = self.mw
                if last_pass or last is None:
                    self.cl = None  # err_over at the head
                    return None
                restarted = True
            last_pass = self.cw <= self.di
            if last_pass and restarted and last is not None:
                stop = last


class RrService:
    """ip_vs_rr.c over a service's life: sched_data is a list position (the head at first);
    ip_vs_rr_del_dest moves it to the entry before a deleted dest that it points at."""

    def __init__(self):
        self.names, self.weights = [], []
        self.cl = None

    def add(self, name, weight):
        # Linked at the head; sched_data keeps pointing at the same entry.
        self.names.insert(0, name)
        self.weights.insert(0, weight)
        if self.cl is not None:
            self.cl += 1

    def edit(self, name, weight):
        self.weights[self.names.index(name)] = weight

    def delete(self, name):
        i = self.names.index(name)
        del self.names[i], self.weights[i]
        if self.cl == i:
            self.cl = i - 1 if i > 0 else None  # p->next->prev: the entry before, or the head
        elif self.cl is not None and self.cl > i:
            self.cl -= 1

    def schedule(self):
        # list_for_each_entry_continue from the cursor, wrapping once through the head.
        order = list(range(0 if self.cl is None else self.cl + 1, len(self.weights)))
        if self.cl is not None:
            order += list(range(0, self.cl + 1))
        for i in order:
            if self.weights[i] > 0:
                self.cl = i
                return self.names[i]
        return None


def replay(service, events):
    """Runs events on a service: ["add", name, weight], ["edit", name, weight], ["del", name],
    ["pick", n]. Returns the names picked, in order (None = no destination)."""
    picks = []
    for e in events:
        if e[0] == "add":
            service.add(e[1], e[2])
        elif e[0] == "edit":
            service.edit(e[1], e[2])
        elif e[0] == "del":
            service.delete(e[1])
        else:
            picks += [service.schedule() for _ in range(e[1])]
    return picks


A, B, C, D = "198.18.1.1:80", "198.18.1.2:80", "198.18.1.3:80", "198.18.1.4:80"
CHANGE_SCENARIOS = [
    # The case: -A then -a A 4, B 3, C 2; the mark evolves on every add.
    [["add", A, 4], ["add", B, 3], ["add", C, 2], ["pick", 20]],
    # Picks between adds: the cursor and cw carry over.
    [["add", A, 4], ["pick", 3], ["add", B, 3], ["pick", 4], ["add", C, 2], ["pick", 12]],
    # A gcd above 1 (di > 1 rounds cw), then it drops to 1 with a new dest.
    [["add", A, 6], ["add", B, 4], ["pick", 5], ["add", C, 3], ["pick", 10], ["del", C], ["pick", 8]],
    # Edits: weight up, weight to 0 (quiesce), back; each is an upd_dest.
    [["add", A, 1], ["add", B, 1], ["add", C, 1], ["pick", 4], ["edit", B, 5], ["pick", 8],
     ["edit", B, 0], ["pick", 5], ["edit", A, 0], ["edit", C, 0], ["pick", 2], ["edit", C, 2], ["pick", 5]],
    # Deleting the dest that was picked last, the head and the tail.
    [["add", A, 2], ["add", B, 2], ["add", C, 1], ["add", D, 3], ["pick", 3], ["del", D], ["pick", 3],
     ["del", A], ["pick", 3], ["add", A, 7], ["pick", 9]],
    # Every dest deleted and added again.
    [["add", A, 3], ["add", B, 1], ["pick", 2], ["del", A], ["del", B], ["pick", 2], ["add", C, 2],
     ["add", B, 4], ["pick", 8]],
]


def main():
    clients = ["198.18.%d.%d" % (a, b) for a in (0, 1, 7) for b in (1, 2, 3, 50, 99, 200, 254)]
    clients6 = ["2001:db8::%x" % i for i in (1, 2, 0x10, 0xbeef)] + ["2001:db8:1:2:3:4:5:6"]
    dest_sets = [
        [("198.18.1.1", 80, 1), ("198.18.1.2", 80, 1), ("198.18.1.3", 80, 1)],
        [("198.18.1.1", 80, 4), ("198.18.1.2", 80, 3), ("198.18.1.3", 80, 2)],
        [("198.18.1.%d" % i, 8080, (i % 5) + 1) for i in range(1, 11)],
        [("2001:db8:1::%d" % i, 443, 1) for i in range(1, 5)],
    ]
    out = {"hsiphash": [], "sh": [], "dh": [], "mh": [], "wrr": [], "rr": []}
    for v in (0, 1, 0x0A000001, 0xC6120101 + 80, MASK32):
        out["hsiphash"].append({"input": v, "key1": hsiphash_1u32(v, KEY1), "key2": hsiphash_1u32(v, KEY2)})
    for dests in dest_sets:
        weights = [w for _, _, w in dests]
        names = ["%s:%d" % (a, p) if ":" not in a else "[%s]:%d" % (a, p) for a, p, _ in dests]
        cl = clients6 if ":" in dests[0][0] else clients
        for flags in ("", "port", "fallback"):
            quiesced = [0] + weights[1:] if flags == "fallback" else weights
            # Quiescing is an edit: upd_dest reassigns the sh table from the current weights.
            table = sh_reassign(quiesced)
            picks = []
            for c in cl:
                port = 40000 + (addr_fold(c) & 0xFF) if flags == "port" else 0
                picks.append(sh_schedule(table, quiesced, c, port, flags == "fallback"))
            out["sh"].append({"dests": names, "weights": weights, "quiesce_first": flags == "fallback",
                              "flags": flags, "clients": cl, "client_port_base": 40000, "picks": picks})
        mt = mh_populate(dests)
        for flags in ("", "port", "fallback"):
            quiesced = [0] + weights[1:] if flags == "fallback" else weights
            picks = []
            for c in cl:
                port = 40000 + (addr_fold(c) & 0xFF) if flags == "port" else 0
                picks.append(mh_schedule(mt, quiesced, c, port, flags == "fallback"))
            counts = [mt.count(i) for i in range(len(dests))]
            out["mh"].append({"dests": names, "weights": weights, "quiesce_first": flags == "fallback",
                              "flags": flags, "clients": cl, "client_port_base": 40000, "picks": picks,
                              "slots_per_dest": counts, "table_head": mt[:64]})
        out["dh"].append({"dests": names, "weights": weights, "targets": cl,
                          "picks": [dh_schedule(len(dests), weights, c) for c in cl]})
    for weights in ([4, 3, 2], [1, 1, 1], [5, 1], [6, 4, 2], [3, 0, 2], [0, 0], [100, 1, 1], [2, 3, 5, 7]):
        out["wrr"].append({"weights": weights, "picks": wrr_added_sequence(weights, 40)})
        out.setdefault("wrr_init", []).append({"weights": weights, "picks": wrr_sequence(weights, 40)})
        out["rr"].append({"weights": weights, "picks": rr_sequence(weights, 12)})
    for events in CHANGE_SCENARIOS:
        out.setdefault("wrr_changes", []).append({"events": events, "picks": replay(WrrService(), events)})
        out.setdefault("rr_changes", []).append({"events": events, "picks": replay(RrService(), events)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
