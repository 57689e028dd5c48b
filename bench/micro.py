#!/usr/bin/env python3
"""The criterion micro-benchmarks in one run, as one table with ratios to their baselines.

Runs, with bounded warm-up and measurement times:
- rvs-core `schedulers`: one pick (schedule + release) per scheduler at 10, 100 and 1000
  dests; baseline: rr at the same size (the cheapest pick);
- rvs-core `table`: 10,000 services x 10 dests applied as one batch and one by one;
- rvs-ipvsadm `listing`: `-Ln`, `-Sn` and `-Ln --stats` of 100,000 dests; baseline: one plain
  `writeln!` line per dest.

It reads criterion's estimates (target/criterion/*/new/estimates.json) and prints the median
with its 95% interval. Needs only cargo; touches no network.

Usage: python3 bench/micro.py [--measurement-time 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")
SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]
SIZES = [10, 100, 1000]


def bench(package, name, seconds):
    run = subprocess.run(["cargo", "bench", "-q", "-p", package, "--bench", name, "--",
                          "--warm-up-time", "1", "--measurement-time", str(seconds)],
                         cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"cargo bench -p {package} --bench {name} failed:\n{run.stderr}")


def estimate(*path):
    """(low, median, high) in ns of one benchmark."""
    with open(os.path.join(CRITERION, *path, "new", "estimates.json")) as f:
        m = json.load(f)["median"]
    ci = m["confidence_interval"]
    return ci["lower_bound"], m["point_estimate"], ci["upper_bound"]


def show(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def row(name, est, base=None):
    low, mid, high = est
    ratio = f"{mid / base:.1f}x" if base else ""
    return f"| `{name}` | {show(low)} | {show(mid)} | {show(high)} | {ratio} |"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measurement-time", type=int, default=3, help="seconds per benchmark")
    opts = p.parse_args()
    bench("rvs-core", "schedulers", opts.measurement_time)
    bench("rvs-core", "table", opts.measurement_time)
    bench("rvs-ipvsadm", "listing", opts.measurement_time)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; `python3 bench/micro.py "
          f"--measurement-time {opts.measurement_time}`; criterion's median and 95% interval.\n")
    print("| benchmark | low | median | high | / baseline |")
    print("|---|---|---|---|---|")
    for size in SIZES:
        rr = estimate("pick_rr", str(size))[1]
        for kind in SCHEDULERS:
            print(row(f"pick/{kind}/{size}", estimate(f"pick_{kind}", str(size)), rr))
    for how in ("batch", "one_by_one"):
        print(row(f"apply_10000x10/{how}", estimate("apply_10000x10", how)))
    plain = estimate("list_100000_dests", "plain_lines")[1]
    for listing in ("plain_lines", "Ln", "Sn", "Ln_stats"):
        print(row(f"list_100000_dests/{listing}", estimate("list_100000_dests", listing), plain))


if __name__ == "__main__":
    main()
