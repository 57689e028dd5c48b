#!/usr/bin/env python3
"""XDP plane: packets per second through veth, against a bare XDP_TX program and nftables DNAT.

Two network namespaces joined by a veth pair. In `gen`, a generator of our own
(crates/rvs-xdp/examples/xdp_gen.rs: XDP live frames, 256 UDP flows) sends frames to the VIP
198.18.0.1 as fast as one core can; in `dir`, each contender sends them back out the same link
towards the real server 198.18.0.20, whose MAC is gen's own, where an XDP_DROP sink counts
them (ethtool's rx_queue_0_xdp_packets). Contenders, interleaved round by round:

- bare: a MAC-swap XDP_TX program (the least an XDP forwarder does: the physical limit here);
- rvs DR, rvs TUN, rvs NAT: rvsd --dataplane xdp (native mode) with one UDP service, set up
  with rvsadm;
- nft DNAT: no XDP; the kernel forwards with an nftables `dnat to` rule and conntrack (what
  people use where IPVS is missing).

Both veth ends poll in threaded NAPI: the director's NAPI thread is alone on CPU 0, so all the
director's work (receive, program or stack, transmit) runs there and nowhere else; the
generator and the sink's NAPI thread share CPU 1, the sink at real-time priority so it keeps up.
Two figures per contender: the rate delivered to the sink, and the director's CPU time per
packet (the run time of its NAPI thread, from /proc/PID/schedstat, over the frames it
received), whose inverse is the rate one director core sustains. When the director is not the
bottleneck (the cheap programs: the generator's core is), the first shows the path's limit and
only the second separates the contenders.

Root only (namespaces, XDP); installs its Debian packages. Bounded: every generator run sends
--packets frames and is killed after 60 s.

Usage: python3 bench/xdp.py [--rounds 5] [--packets 5000000]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = f"rvsb{os.getpid()}"
GEN, DIR = f"{TAG}g", f"{TAG}d"
GEN_MAC, DIR_MAC = "02:00:00:00:00:10", "02:00:00:00:00:01"
CLIENT, VIP, REAL = "198.18.0.10", "198.18.0.1", "198.18.0.20"
CONTENDERS = ["bare", "rvs DR", "rvs TUN", "rvs NAT", "nft DNAT"]
DIRECTOR_CPU, GENERATOR_CPU = 0, 1
GENERATOR = f"{ROOT}/target/release/examples/xdp_gen"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def ns(name, *args, **kw):
    return sh("ip", "netns", "exec", name, *args, **kw)


def ensure_tools():
    need = {"nft": "nftables", "ethtool": "ethtool", "clang": "clang", "ip": "iproute2",
            "chrt": "util-linux", "taskset": "util-linux"}
    missing = sorted({pkg for tool, pkg in need.items() if not shutil.which(tool)})
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        missing.append("libbpf-dev")
    if missing:
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


SINK = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int sink(struct xdp_md *ctx) { return XDP_DROP; }
char _license[] SEC("license") = "GPL";
"""


def compile_bpf(tmp):
    arch = os.uname().machine
    flags = ["-O2", "-g", "-target", "bpf", f"-I/usr/include/{arch}-linux-gnu"]
    with open(f"{tmp}/sink.c", "w") as f:
        f.write(SINK)
    sh("clang", *flags, "-c", f"{tmp}/sink.c", "-o", f"{tmp}/sink.o")
    sh("clang", *flags, "-c", f"{ROOT}/bpf/bench_macswap.bpf.c", "-o", f"{tmp}/macswap.o")


def napi_threads():
    """PIDs of the kernel's NAPI threads (named napi/IFNAME-ID)."""
    found = set()
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and open(f"/proc/{pid}/comm").read().startswith("napi/"):
                found.add(int(pid))
        except OSError:
            pass
    return found


def threaded_napi(netns, dev, cpu, realtime):
    """Switches `dev` to threaded NAPI and pins its new thread to `cpu`; returns the PID."""
    before = napi_threads()
    ns(netns, "sh", "-c", f"echo 1 > /sys/class/net/{dev}/threaded")
    new = napi_threads() - before
    if len(new) != 1:
        raise RuntimeError(f"expected one new NAPI thread for {dev}, found {sorted(new)}")
    pid = new.pop()
    sh("taskset", "-pc", str(cpu), str(pid), stdout=subprocess.DEVNULL)
    if realtime:
        sh("chrt", "-f", "-p", "50", str(pid))
    return pid


def lab_up(tmp):
    """Builds the two namespaces; returns the PID of the director's NAPI thread."""
    sh("ip", "netns", "add", GEN)
    sh("ip", "netns", "add", DIR)
    sh("ip", "link", "add", "g0", "netns", GEN, "type", "veth", "peer", "name", "d0", "netns", DIR)
    sh("ip", "-n", GEN, "link", "set", "g0", "address", GEN_MAC, "up")
    sh("ip", "-n", DIR, "link", "set", "d0", "address", DIR_MAC, "up")
    sh("ip", "-n", GEN, "addr", "add", f"{CLIENT}/24", "dev", "g0")
    sh("ip", "-n", DIR, "addr", "add", "198.18.0.2/24", "dev", "d0")
    # The real server's MAC is gen's: what the director sends there comes back to the sink.
    sh("ip", "-n", DIR, "neigh", "replace", REAL, "lladdr", GEN_MAC, "dev", "d0", "nud", "permanent")
    sh("ip", "-n", GEN, "link", "set", "g0", "xdpdrv", "obj", f"{tmp}/sink.o", "sec", "xdp")
    # GRO keeps the director's veth NAPI (and its thread) in place whether or not a contender
    # attaches an XDP program, so nftables gets the generator's frames through the same path.
    ns(DIR, "ethtool", "-K", "d0", "gro", "on")
    for knob in ["net/ipv4/conf/all/rp_filter", "net/ipv4/conf/d0/rp_filter",
                 "net/ipv4/conf/all/send_redirects", "net/ipv4/conf/d0/send_redirects"]:
        ns(DIR, "sh", "-c", f"echo 0 > /proc/sys/{knob}")
    director = threaded_napi(DIR, "d0", DIRECTOR_CPU, realtime=False)
    threaded_napi(GEN, "g0", GENERATOR_CPU, realtime=True)
    return director


def lab_down():
    for n in (GEN, DIR):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)


def xdp_packets(netns, dev):
    out = subprocess.run(["ip", "netns", "exec", netns, "ethtool", "-S", dev], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("rx_queue_0_xdp_packets:"):
            return int(line.split()[1])
    raise RuntimeError(f"no rx_queue_0_xdp_packets in ethtool -S {dev}")


def run_ns(pid):
    """CPU time the thread has run, in ns (the first field of /proc/PID/schedstat)."""
    return int(open(f"/proc/{pid}/schedstat").read().split()[0])


class Rvsd:
    """rvsd with the xdp plane in the director namespace, one UDP service to the real server.

    Its own threads stay off the director's core: only the control plane runs in them."""

    def __init__(self, tmp, method):
        self.socket = f"{tmp}/rvsd.sock"
        state = tempfile.mkdtemp(dir=tmp)
        self.log = open(f"{tmp}/rvsd.log", "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", DIR, "taskset", "-c", str(GENERATOR_CPU), f"{ROOT}/target/release/rvsd",
             "--dataplane", "xdp", "--interface", "d0", "--xdp-mode", "native", "--state-dir", state,
             "--control", self.socket],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit(f"rvsd did not come up: {open(f'{tmp}/rvsd.log').read()}")
            time.sleep(0.05)
        self.adm("-A", "-u", f"{VIP}:9", "-s", "rr")
        self.adm("-a", "-u", f"{VIP}:9", "-r", f"{REAL}:9", method)

    def adm(self, *args):
        return subprocess.run([f"{ROOT}/target/release/rvsadm", "--socket", self.socket, *args],
                              check=True, capture_output=True, text=True).stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if os.path.exists(self.socket):
            os.unlink(self.socket)


NFT_RULES = f"""table ip rvsbench {{
  chain prerouting {{
    type nat hook prerouting priority -100;
    ip daddr {VIP} udp dport 9 dnat to {REAL}
  }}
}}
"""


def setup(name, tmp):
    """Puts `name` in place on the director; returns its teardown."""
    if name == "bare":
        sh("ip", "-n", DIR, "link", "set", "d0", "xdpdrv", "obj", f"{tmp}/macswap.o", "sec", "xdp")
        return lambda: sh("ip", "-n", DIR, "link", "set", "d0", "xdpdrv", "off")
    if name.startswith("rvs"):
        method = {"rvs DR": "-g", "rvs TUN": "-i", "rvs NAT": "-m"}[name]
        rvsd = Rvsd(tmp, method)
        return rvsd.stop
    ns(DIR, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
    ns(DIR, "nft", "-f", "-", input=NFT_RULES, text=True)

    def down():
        ns(DIR, "nft", "delete", "table", "ip", "rvsbench")
        ns(DIR, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
    return down


def measure(packets, director):
    """Sends `packets` frames from gen; returns (received by the director, delivered to the
    sink, packets/s delivered, director ns per received packet)."""
    sink, rx, ran = xdp_packets(GEN, "g0"), xdp_packets(DIR, "d0"), run_ns(director)
    out = subprocess.run(["ip", "netns", "exec", GEN, "taskset", "-c", str(GENERATOR_CPU), GENERATOR,
                          "--interface", "g0", "--packets", str(packets), "--src-mac", GEN_MAC,
                          "--dst-mac", DIR_MAC, "--src-ip", CLIENT, "--dst-ip", VIP],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    seconds = float(out.split()[1])
    received = xdp_packets(DIR, "d0") - rx
    delivered = xdp_packets(GEN, "g0") - sink
    cost = (run_ns(director) - ran) / max(received, 1)
    return received, delivered, delivered / seconds, cost


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--packets", type=int, default=5_000_000)
    p.add_argument("--only", action="append", choices=CONTENDERS,
                   help="measure only these contenders (repeatable; bare is always measured)")
    opts = p.parse_args()
    contenders = [c for c in CONTENDERS if c == "bare" or not opts.only or c in opts.only]
    if os.geteuid() != 0:
        sys.exit("bench/xdp.py needs root (network namespaces, XDP)")
    if os.cpu_count() < 2:
        sys.exit("bench/xdp.py needs two CPUs: one for the director, one for the generator")
    ensure_tools()
    sh("cargo", "build", "--release", "-q", "--bin", "rvsd", "--bin", "rvsadm", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", "-p", "rvs-xdp", "--example", "xdp_gen", cwd=ROOT)
    rates = {c: [] for c in contenders}
    costs = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        compile_bpf(tmp)
        try:
            director = lab_up(tmp)
            for r in range(opts.rounds):
                for name in contenders:
                    down = setup(name, tmp)
                    try:
                        measure(10_000, director)  # warm: flows, conntrack, neighbour entries
                        received, delivered, pps, cost = measure(opts.packets, director)
                    finally:
                        down()
                    if delivered < received * 0.9:
                        sys.exit(f"{name}: only {delivered} of the {received} frames the director received came back")
                    rates[name].append(pps)
                    costs[name].append(cost)
                    print(f"round {r + 1} {name}: {pps / 1e3:.0f} kpps delivered, {received} received, "
                          f"{cost:.0f} ns per packet on the director's core", file=sys.stderr)
        finally:
            lab_down()
    report(opts, rates, costs)


def report(opts, rates, costs):
    kernel = open("/proc/sys/kernel/osrelease").read().strip()
    print(f"{time.strftime('%Y-%m-%d')}, kernel {kernel}, {os.cpu_count()} cores; "
          f"`python3 bench/xdp.py --rounds {opts.rounds} --packets {opts.packets}`; "
          f"60-byte UDP frames, 256 flows; medians of {opts.rounds} interleaved rounds, "
          f"each contender against the bare program (or nftables) of the same round.\n")

    def paired(values, c, base):
        return statistics.median(x / y for x, y in zip(values[c], values[base]))

    def spread(v, scale):
        return f"{statistics.median(v) / scale:.0f} ({min(v) / scale:.0f}..{max(v) / scale:.0f})"

    nft = "nft DNAT" in rates
    print("| director | kpps delivered | vs bare | director ns per packet | director core capacity, Mpps "
          "| capacity vs bare |" + (" capacity vs nft DNAT |" if nft else ""))
    print("|---|---|---|---|---|---|" + ("---|" if nft else ""))
    for c in rates:
        capacity = 1e3 / statistics.median(costs[c])
        # A director core's capacity is the inverse of its time per packet: the ratio of
        # capacities is the inverse ratio of costs.
        print(f"| {c} | {spread(rates[c], 1e3)} | {paired(rates, c, 'bare'):.2f} | {spread(costs[c], 1)} | "
              f"{capacity:.2f} | {paired(costs, 'bare', c):.2f} |" + (f" {paired(costs, 'nft DNAT', c):.1f} |" if nft else ""))


if __name__ == "__main__":
    main()
