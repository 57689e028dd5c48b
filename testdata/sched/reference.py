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
    """ip_vs_wrr_init_svc / ip_vs_wrr_dest_changed / ip_vs_wrr_schedule; cl None = list head."""
    di = 0
    for w in weights:
        if w > 0:
            di = gcd(w, di) if di > 0 else w
    di = di or 1
    mw = max(weights + [0]) - (di - 1)
    cw, cl, out = mw, None, []
    for _ in range(n):
        if mw == 0:
            out.append(None)
            continue
        last, stop, last_pass, restarted = cl, None, False, False
        pos = -1 if cl is None else cl
        found = None
        while found is None:
            hit = False
            for i in range(pos + 1, len(weights)):
                if weights[i] >= cw:
                    found, hit = i, True
                    break
                if i == stop:
                    break
            if hit or (stop is not None and pos + 1 <= stop < len(weights) and found is None and i == stop):
                break
            pos = -1
            cw -= di
            if cw <= 0:
                cw = mw
                if last_pass or last is None:
                    break
                restarted = True
            last_pass = cw <= di
            if last_pass and restarted and last is not None:
                stop = last
        cl = found if found is not None else cl
        out.append(found)
    return out


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
        out["wrr"].append({"weights": weights, "picks": wrr_sequence(weights, 40)})
        out["rr"].append({"weights": weights, "picks": rr_sequence(weights, 12)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
