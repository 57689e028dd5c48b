#!/usr/bin/env bash
# Builds ipvsadm-ref: ipvsadm 1.31's own ipvsadm.c over fake_libipvs.c (a text-file "kernel").
# Needs: a deb-src entry for bookworm, dpkg-dev, gcc, libpopt-dev. Output: $OUT (default
# target/ipvsadm-ref/ipvsadm). ipvsadm's source is fetched here, never committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/../../../target/ipvsadm-ref}
mkdir -p "$out" && cd "$out"
if [ ! -d ipvsadm-1.31 ]; then
  apt-get source -qq --download-only ipvsadm >/dev/null 2>&1 || true
  tar xzf ipvsadm_1.31.orig.tar.gz
fi
src=ipvsadm-1.31
# -Lc reads /proc/net/ip_vs_conn; let the oracle read a fixture instead.
sed 's|#define CONN_PROC_FILE\t\t"/proc/net/ip_vs_conn"|#define CONN_PROC_FILE (getenv("IPVS_FAKE_CONN") ? getenv("IPVS_FAKE_CONN") : "/proc/net/ip_vs_conn")|' \
  "$src/ipvsadm.c" > ipvsadm-ref.c
gcc -O0 -w -DVERSION='"1.31"' -DSCHEDULERS='"rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh"' \
  -DPE_LIST='"sip"' -DHAVE_NET_IP_VS_H -I"$src" -I"$src/libipvs" \
  -o ipvsadm ipvsadm-ref.c "$src/config_stream.c" "$src/dynamic_array.c" "$here/fake_libipvs.c" -lpopt
echo "$out/ipvsadm"
