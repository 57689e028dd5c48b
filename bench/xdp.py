#!/usr/bin/env python3
"""XDP plane: packets per second through veth, against a bare XDP_TX program and nftables DNAT.

Two network namespaces joined by a veth pair: `gen` sends UDP frames (trafgen from
netsniff-ng, 256 flows) to the VIP 198.18.0.1 through the director namespace `dir`, where each
contender sends them back out the same link towards the real server 198.18.0.20, whose MAC is
gen's own; gen's side counts what comes back with an XDP_DROP sink (ethtool's
rx_queue_0_xdp_packets). Contenders, interleaved round by round:

- bare: a MAC-swap XDP_TX program (the least an XDP forwarder does: the physical limit here);
- rvs DR, rvs TUN, rvs NAT: rvsd --dataplane xdp (native mode) with one UDP service, set up
  with rvsadm;
- nft DNAT: no XDP; the kernel forwards with an nftables `dnat to` rule and conntrack (what
  people use where IPVS is missing).

On veth the generator, both programs and the stack run in the sender's softirq on one core, so
the rate is that of the whole path; the ratios say what each director costs on top of it.

Root only (namespaces, XDP); installs its Debian packages. Bounded: every trafgen run sends
--packets frames and is killed after 60 s.

Usage: python3 bench/xdp.py [--rounds 5] [--packets 2000000]
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
VIP, REAL = "198.18.0.1", "198.18.0.20"
CONTENDERS = ["bare", "rvs DR", "rvs TUN", "rvs NAT", "nft DNAT"]


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def ns(name, *args, **kw):
    return sh("ip", "netns", "exec", name, *args, **kw)


def ensure_tools():
    need = {"trafgen": "netsniff-ng", "nft": "nftables", "ethtool": "ethtool", "clang": "clang", "ip": "iproute2"}
    missing = [pkg for tool, pkg in need.items() if not shutil.which(tool)]
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


def trafgen_conf(tmp):
    mac = lambda m: ", ".join("0x" + b for b in m.split(":"))
    ip = lambda a: ", ".join(a.split("."))
    conf = f"""{{
  {mac(DIR_MAC)},
  {mac(GEN_MAC)},
  c16(0x0800),
  0x45, 0x00, c16(46), c16(1), c16(0x4000), 64, 17, csumip(14, 33),
  {ip("198.18.0.10")},
  {ip(VIP)},
  0x80, dinc(0, 255, 1), c16(9), c16(26), c16(0),
  fill(0x61, 18),
}}
"""
    path = f"{tmp}/udp.trafgen"
    with open(path, "w") as f:
        f.write(conf)
    return path


def lab_up(tmp):
    sh("ip", "netns", "add", GEN)
    sh("ip", "netns", "add", DIR)
    sh("ip", "link", "add", "g0", "netns", GEN, "type", "veth", "peer", "name", "d0", "netns", DIR)
    sh("ip", "-n", GEN, "link", "set", "g0", "address", GEN_MAC, "up")
    sh("ip", "-n", DIR, "link", "set", "d0", "address", DIR_MAC, "up")
    sh("ip", "-n", GEN, "addr", "add", "198.18.0.10/24", "dev", "g0")
    sh("ip", "-n", DIR, "addr", "add", "198.18.0.2/24", "dev", "d0")
    # The real server's MAC is gen's: what the director sends there comes back to the sink.
    sh("ip", "-n", DIR, "neigh", "replace", REAL, "lladdr", GEN_MAC, "dev", "d0", "nud", "permanent")
    sh("ip", "-n", GEN, "link", "set", "g0", "xdpdrv", "obj", f"{tmp}/sink.o", "sec", "xdp")
    for knob in ["net/ipv4/conf/all/rp_filter", "net/ipv4/conf/d0/rp_filter",
                 "net/ipv4/conf/all/send_redirects", "net/ipv4/conf/d0/send_redirects"]:
        ns(DIR, "sh", "-c", f"echo 0 > /proc/sys/{knob}")


def lab_down():
    for n in (GEN, DIR):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)


def sink_count():
    out = subprocess.run(["ip", "netns", "exec", GEN, "ethtool", "-S", "g0"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "rx_queue_0_xdp_packets" in line:
            return int(line.split()[1])
    raise RuntimeError("no rx_queue_0_xdp_packets in ethtool -S g0")


class Rvsd:
    """rvsd with the xdp plane in the director namespace, one UDP service to the real server."""

    def __init__(self, tmp, method):
        self.socket = f"{tmp}/rvsd.sock"
        state = tempfile.mkdtemp(dir=tmp)
        self.log = open(f"{tmp}/rvsd.log", "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", DIR, f"{ROOT}/target/release/rvsd", "--dataplane", "xdp",
             "--interface", "d0", "--xdp-mode", "native", "--state-dir", state, "--control", self.socket],
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


def measure(conf, packets):
    """Sends `packets` frames from gen on CPU 0; returns (delivered, packets/s delivered)."""
    before = sink_count()
    start = time.monotonic()
    subprocess.run(["ip", "netns", "exec", GEN, "taskset", "-c", "0", "trafgen", "-o", "g0", "-i", conf,
                    "-n", str(packets), "-P", "1"], capture_output=True, timeout=60, check=True)
    elapsed = time.monotonic() - start
    delivered = sink_count() - before
    return delivered, delivered / elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--packets", type=int, default=2_000_000)
    opts = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/xdp.py needs root (network namespaces, XDP)")
    ensure_tools()
    sh("cargo", "build", "--release", "-q", "--bin", "rvsd", "--bin", "rvsadm", cwd=ROOT)
    rates = {c: [] for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        compile_bpf(tmp)
        conf = trafgen_conf(tmp)
        try:
            lab_up(tmp)
            for r in range(opts.rounds):
                for name in CONTENDERS:
                    down = setup(name, tmp)
                    try:
                        measure(conf, 10_000)  # warm: flows, conntrack, neighbour entries
                        delivered, pps = measure(conf, opts.packets)
                    finally:
                        down()
                    if delivered < opts.packets * 0.9:
                        sys.exit(f"{name}: only {delivered} of {opts.packets} frames came back")
                    rates[name].append(pps)
                    print(f"round {r + 1} {name}: {pps / 1e3:.0f} kpps", file=sys.stderr)
        finally:
            lab_down()
    report(opts, rates)


def report(opts, rates):
    med = {c: statistics.median(v) for c, v in rates.items()}
    kernel = open("/proc/sys/kernel/osrelease").read().strip()
    print(f"{time.strftime('%Y-%m-%d')}, kernel {kernel}, {os.cpu_count()} cores; "
          f"`python3 bench/xdp.py --rounds {opts.rounds} --packets {opts.packets}`; "
          f"60-byte UDP frames, 256 flows; medians of {opts.rounds} interleaved rounds.\n")
    # What a director adds to the path: its time per packet minus the bare program's.
    extra = {c: 1e9 / med[c] - 1e9 / med["bare"] for c in CONTENDERS}
    # Paired ratios: each contender against the bare program measured in the same round, so a
    # round the shared machine slowed down counts against both.
    def paired(c, base):
        return statistics.median(x / y for x, y in zip(rates[c], rates[base]))

    print("| director | kpps delivered (median, min..max) | vs bare XDP_TX | vs bare, same round (median) "
          "| vs nft DNAT | ns per packet above bare |")
    print("|---|---|---|---|---|---|")
    for c in CONTENDERS:
        v = rates[c]
        print(f"| {c} | {med[c] / 1e3:.0f} ({min(v) / 1e3:.0f}..{max(v) / 1e3:.0f}) | "
              f"{med[c] / med['bare']:.2f} | {paired(c, 'bare'):.2f} | "
              f"{med[c] / med['nft DNAT']:.2f} | {extra[c]:.0f} |")


if __name__ == "__main__":
    main()
