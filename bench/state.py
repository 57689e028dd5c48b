#!/usr/bin/env python3
"""Durable changes per second from many clients, end to end through rvsd's API.

For a table of 100 dests (1 service) and of 50,000 dests (50 services x 1,000), a fresh rvsd
(`--dataplane none`, its state on the disk under target/) gets weight edits from CLIENTS
concurrent API clients, each on its own keep-alive connection to the control socket: every
answer means the change is fsynced in the journal. Baseline in the same run, same clients:
`GET /v1/health` (takes the director's lock, writes nothing), the API's own ceiling.
Prints changes/s, latency p50/p99 and the ratio to the baseline, median of ROUNDS rounds.

Every load is bounded: EDITS edits per client and a 120 s deadline per round.

Usage: python3 bench/state.py [--clients 8] [--edits 200] [--rounds 3]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
DEADLINE = 120.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket (rvsd's control socket)."""

    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def service(i):
    return f"198.18.{i // 250}.{i % 250 + 1}:80"


def real(i):
    return f"198.19.{i // 250}.{i % 250 + 1}:80"


def restore_script(services, per_service):
    lines = []
    for s in range(services):
        lines.append(f"-A -t {service(s)} -s rr")
        for d in range(per_service):
            lines.append(f"-a -t {service(s)} -r {real(s * per_service + d)} -m -w 1")
    return "\n".join(lines) + "\n"


def edit_body(s, d, per_service, weight):
    return json.dumps({
        "command": "edit_dest",
        "service": {"kind": "inet", "protocol": "tcp", "addr": service(s)},
        "dest": {"addr": real(s * per_service + d), "forward": {"method": "masq"},
                 "weight": weight, "u_threshold": 0, "l_threshold": 0},
    })


class Director:
    def __init__(self, services, per_service):
        os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="state-bench-", dir=os.path.join(ROOT, "target"))
        self.sock = os.path.join(self.dir, "rvsd.sock")
        # The log goes to a file: the audit log of a 50,000-dest restore would fill a pipe
        # nobody reads and stop the daemon on its next write.
        self.log = open(os.path.join(self.dir, "rvsd.log"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(RELEASE, "rvsd"), "--dataplane", "none", "--state-dir",
             os.path.join(self.dir, "state"), "--control", self.sock],
            stdout=subprocess.DEVNULL, stderr=self.log)
        until = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > until:
                self.log.seek(0)
                message = self.log.read()
                self.close()
                sys.exit(f"rvsd did not start: {message}")
            time.sleep(0.05)
        restore = subprocess.run(
            [os.path.join(RELEASE, "rvsadm"), "--socket", self.sock, "-R"],
            input=restore_script(services, per_service), text=True, capture_output=True,
            timeout=300)
        if restore.returncode != 0:
            self.close()
            sys.exit(f"rvsadm -R failed: {restore.stderr}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def load(sock, clients, count, request):
    """Runs `count` requests on each of `clients` connections at once; (per second, latencies)."""
    latencies = []
    errors = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(c):
        conn = UnixHTTPConnection(sock)
        mine = []
        start_gate.wait()
        try:
            for n in range(count):
                if time.monotonic() > deadline[0]:
                    break
                method, path, body = request(c, n)
                t0 = time.perf_counter()
                conn.request(method, path, body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                mine.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
        except Exception as e:  # reported after the round
            errors.append(e)
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + DEADLINE
    t0 = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        sys.exit(f"a client failed: {errors[0]}")
    return len(latencies) / elapsed, sorted(latencies)


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--edits", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "rvsd", "-p", "rvsadm"],
                   cwd=ROOT, check=True)
    print(f"{args.clients} clients x {args.edits} requests, {args.rounds} rounds (median)")
    print("| dests | changes/s | p50 ms | p99 ms | health req/s | ratio |")
    print("|---|---|---|---|---|---|")
    for services, per in [(1, 100), (50, 1000)]:
        rows = []
        for _ in range(args.rounds):
            d = Director(services, per)
            try:
                def edit(c, n):
                    # Each client edits dests of its own, alternating the weight.
                    s = (c * 7 + n) % services
                    return ("POST", "/v1/commands",
                            edit_body(s, (c * 13 + n) % per, per, 1 + (n % 2)))

                def health(c, n):
                    return ("GET", "/v1/health", None)

                rate, lat = load(d.sock, args.clients, args.edits, edit)
                base, _ = load(d.sock, args.clients, args.edits, health)
                rows.append((rate, pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, base))
            finally:
                d.close()
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"| {services * per:,} | {med[0]:.0f} | {med[1]:.2f} | {med[2]:.2f} "
              f"| {med[3]:.0f} | {med[0] / med[3]:.3f} |")


if __name__ == "__main__":
    main()
