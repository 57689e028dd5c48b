#!/usr/bin/env python3
"""Userspace plane against HAProxy (tcp mode), nginx (stream module) and a direct connection.

Everything runs on loopback with the same nginx real servers (a small and a large static file)
and the same load generator (wrk). The director under test is pinned to CPU 0; wrk and the real
servers to CPU 1. Runs of the contenders are interleaved, each measurement is repeated ROUNDS
times, and medians (with min..max) are reported, with ratios against HAProxy and the direct
connection of the same run.

Usage (root installs the Debian packages it needs):
    python3 bench/proxy.py [--rounds 3] [--seconds 5] [--out docs/bench-proxy.md]
"""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 18080
REALS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
VIPS = {"direct": "127.0.0.2", "rvs": "127.0.0.10", "haproxy": "127.0.0.11", "nginx": "127.0.0.12"}
REAL_PORT = 18081
# nginx's connections per worker and open files: room for the idle measurement's connections
# (a stream proxy counts two per client) on top of the load's.
WORKER_FILES = 40000
SMALL = 100
LARGE = 1 << 20
procs = []


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def ensure_tools():
    need = {"haproxy": "haproxy", "nginx": "nginx-light", "wrk": "wrk", "taskset": "util-linux"}
    missing = [pkg for tool, pkg in need.items() if not shutil.which(tool)]
    if not os.path.exists("/usr/lib/nginx/modules/ngx_stream_module.so") and not stream_builtin():
        missing.append("libnginx-mod-stream")
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"missing {missing}; run as root to install them")
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def stream_builtin():
    if not shutil.which("nginx"):
        return False
    out = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
    return "--with-stream " in out or out.rstrip().endswith("--with-stream")


def raise_fd_limit(idle):
    """Makes room for `idle` proxied connections: a proxy holds two descriptors each, this
    script one. Root raises the limit (the children inherit it); otherwise the measurement
    uses as many connections as the limit allows, and says so."""
    need = 3 * idle + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
        except (ValueError, OSError):
            fit = max(100, (hard - 1000) // 3)
            print(f"the descriptor limit ({hard}) allows {fit} idle connections, not {idle}", file=sys.stderr)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return min(idle, fit)
    return idle


def start(args, cpu, **kw):
    p = subprocess.Popen(["taskset", "-c", str(cpu), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    procs.append(p)
    return p


def wait_port(host, port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{host}:{port} did not come up")


def nginx_conf(tmp, body):
    load = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;" if os.path.exists("/usr/lib/nginx/modules/ngx_stream_module.so") and "stream" in body else ""
    return f"""{load}
worker_processes 1;
worker_rlimit_nofile {WORKER_FILES};
daemon off;
pid {tmp}/nginx-{abs(hash(body))}.pid;
error_log /dev/null crit;
events {{ worker_connections {WORKER_FILES}; }}
{body}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--raw", default=None, help="keep wrk's raw output in this directory")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections for the memory measurement")
    opts = ap.parse_args()
    opts.idle = raise_fd_limit(opts.idle)
    ensure_tools()
    sh("cargo", "build", "--release", "-q", "-p", "rvsd", "-p", "rvsadm", cwd=ROOT)
    tmp = tempfile.mkdtemp(prefix="rvs-bench-")
    try:
        run(opts, tmp)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def run(opts, tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    # nginx's workers run as www-data: let them read the files.
    os.chmod(tmp, 0o755)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "small"), "wb") as f:
        f.write(b"x" * SMALL)
    with open(os.path.join(www, "large"), "wb") as f:
        f.write(os.urandom(LARGE))
    for name in ("small", "large"):
        os.chmod(os.path.join(www, name), 0o644)
    listens = "\n".join(f"listen {r}:{REAL_PORT} reuseport backlog=4096;" for r in REALS)
    real = nginx_conf(tmp, f"""http {{ access_log off; keepalive_requests 1000000;
  server {{ {listens} root {www}; location / {{ }} }} }}""")
    open(os.path.join(tmp, "real.conf"), "w").write(real)
    start(["nginx", "-c", os.path.join(tmp, "real.conf"), "-p", tmp], 1)
    wait_port(REALS[0], REAL_PORT)

    # rvs, proxy plane
    sock = os.path.join(tmp, "rvsd.sock")
    rvsd = start([os.path.join(ROOT, "target/release/rvsd"), "--state-dir", os.path.join(tmp, "state"), "--control", sock, "--dataplane", "proxy"], 0, env={**os.environ, "RVS_LOG": "warn"})
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    adm = os.path.join(ROOT, "target/release/rvsadm")
    vip = f"{VIPS['rvs']}:{PORT}"
    sh(adm, "--socket", sock, "-A", "-t", vip, "-s", "rr")
    for r in REALS:
        sh(adm, "--socket", sock, "-a", "-t", vip, "-r", f"{r}:{REAL_PORT}", "-m")

    servers = "\n".join(f"  server r{i} {r}:{REAL_PORT}" for i, r in enumerate(REALS))
    open(os.path.join(tmp, "haproxy.cfg"), "w").write(f"""global
  maxconn {opts.idle + 2000}
  nbthread 1
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend f
  bind {VIPS['haproxy']}:{PORT}
  default_backend b
backend b
  balance roundrobin
{servers}
""")
    hap = start(["haproxy", "-f", os.path.join(tmp, "haproxy.cfg")], 0)
    ups = "\n".join(f"    server {r}:{REAL_PORT};" for r in REALS)
    open(os.path.join(tmp, "stream.conf"), "w").write(nginx_conf(tmp, f"""stream {{ upstream u {{
{ups}
  }}
  server {{ listen {VIPS['nginx']}:{PORT} reuseport backlog=4096; proxy_pass u; }} }}"""))
    ngx = start(["nginx", "-c", os.path.join(tmp, "stream.conf"), "-p", tmp], 0)
    for name, host in VIPS.items():
        wait_port(host, REAL_PORT if name == "direct" else PORT)

    director = {"rvs": rvsd.pid, "haproxy": hap.pid, "nginx": ngx.pid, "direct": None}
    tests = {
        "keep-alive req/s (small)": (["-c", "64"], "small", []),
        "new conn/s (Connection: close)": (["-c", "32"], "small", ["-H", "Connection: close"]),
        "bulk MB/s (1 MiB file)": (["-c", "4"], "large", []),
    }
    results = {t: {c: [] for c in VIPS} for t in tests}
    lat = {c: {"p50": [], "p99": []} for c in VIPS}
    cpu = {c: [] for c in VIPS}
    for rnd in range(opts.rounds):
        for test, (conc, path, extra) in tests.items():
            for c, host in VIPS.items():
                port = REAL_PORT if c == "direct" else PORT
                url = f"http://{host}:{port}/{path}"
                t0 = cpu_ticks(director[c])
                out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", *conc, "-d", f"{opts.seconds}s", "--latency", *extra, url], capture_output=True, text=True).stdout
                t1 = cpu_ticks(director[c])
                if opts.raw:
                    os.makedirs(opts.raw, exist_ok=True)
                    with open(os.path.join(opts.raw, f"{rnd}-{path}-{c}-{len(extra)}.txt"), "w") as f:
                        f.write(out)
                reqs, rps, mbps, p50, p99 = parse_wrk(out)
                value = mbps if path == "large" else rps
                results[test][c].append(value)
                if test.startswith("keep-alive"):
                    lat[c]["p50"].append(p50)
                    lat[c]["p99"].append(p99)
                    if director[c] and reqs:
                        cpu[c].append((t1 - t0) / os.sysconf("SC_CLK_TCK") / reqs * 1e6)
        print(f"round {rnd + 1}/{opts.rounds} done", file=sys.stderr)
    mem = {c: idle_memory(VIPS[c], director[c], opts.idle) for c in ("rvs", "haproxy", "nginx")}
    report(opts, results, lat, cpu, mem)


def family(pid):
    """The process and its children (nginx's workers do the work, not its master)."""
    pids = [pid]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def cpu_ticks(pid):
    if not pid:
        return 0
    total = 0
    for p in family(pid):
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])
    return total


def parse_wrk(out):
    if "Non-2xx" in out:
        sys.exit("the real servers answered errors; the measurement would be meaningless:\n" + out)
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mbps = float(tr.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}[tr.group(2)]
    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else float("nan")
    return reqs, rps, mbps, ms("50"), ms("99")


def rss_kib(pid):
    total = 0
    for p in family(pid):
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def idle_memory(host, pid, n):
    before = rss_kib(pid)
    conns = []
    try:
        for _ in range(n):
            conns.append(socket.create_connection((host, PORT), 5))
        time.sleep(1)
        after = rss_kib(pid)
    finally:
        for c in conns:
            c.close()
    return (after - before) / 1024


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return f"{min(xs):.0f}..{max(xs):.0f}" if xs else ""


def report(opts, results, lat, cpu, mem):
    lines = [f"Rounds: {opts.rounds} x {opts.seconds} s per measurement, interleaved. Director on CPU 0; wrk and nginx real servers on CPU 1.", ""]
    lines.append("| measurement | direct | rvs proxy | HAProxy | nginx stream | rvs / HAProxy | rvs / direct |")
    lines.append("|---|---|---|---|---|---|---|")
    for test, by in results.items():
        m = {c: med(v) for c, v in by.items()}
        cells = " | ".join(f"{m[c]:.0f} ({spread(by[c])})" for c in ("direct", "rvs", "haproxy", "nginx"))
        lines.append(f"| {test} | {cells} | {m['rvs'] / m['haproxy']:.2f} | {m['rvs'] / m['direct']:.2f} |")
    for q in ("p50", "p99"):
        m = {c: med(lat[c][q]) for c in VIPS}
        cells = " | ".join(f"{m[c]:.3f}" for c in ("direct", "rvs", "haproxy", "nginx"))
        lines.append(f"| keep-alive latency {q} (ms) | {cells} | {m['rvs'] / m['haproxy']:.2f} | {m['rvs'] / m['direct']:.2f} |")
    m = {c: med(cpu[c]) for c in ("rvs", "haproxy", "nginx")}
    lines.append(f"| director CPU per keep-alive request (µs) | | {m['rvs']:.2f} | {m['haproxy']:.2f} | {m['nginx']:.2f} | {m['rvs'] / m['haproxy']:.2f} | |")
    lines.append(f"| RSS growth for {opts.idle:,} idle connections (MiB) | | {mem['rvs']:.1f} | {mem['haproxy']:.1f} | {mem['nginx']:.1f} | {mem['rvs'] / mem['haproxy']:.2f} | |")
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps({"results": results, "latency": lat, "cpu_us": cpu, "idle_mib": mem}), file=sys.stderr)
    if opts.out:
        open(opts.out, "w").write(text)


if __name__ == "__main__":
    main()
