#!/usr/bin/env bash
# `make bench`: cloudy against tinc 1.0 (switch mode) and the plain veth,
# over one pair of namespaces joined by a veth, in one run:
#   - iperf3 TCP throughput, 10 s;
#   - ping RTT, 50 pings 0.05 s apart (average);
#   - CPU seconds per GB moved (utime+stime of both daemons, /proc/PID/stat);
#   - RSS (VmRSS) of cloudy with 1 and with 50 configured peers, and of tincd;
#   - size of the stripped static cloudy binary.
# Prints a markdown table and writes it, with the machine, to docs/bench.md.
# Not a test: it never fails on a missed target, only on a broken run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
NS_PREFIX="cyb$$"
# shellcheck source=netns.sh
. "$here/netns.sh"
need_root "make bench"
BIN="$(cloudy_bin)"
for c in iperf3 tincd python3 ping; do command -v "$c" >/dev/null || die "$c missing (scripts/deps.sh bench)"; done
OUT="${BENCH_OUT:-$root/docs/bench.md}"
IPERF_SECS="${IPERF_SECS:-10}"

DIR="$(mktemp -d /tmp/cloudy-bench.XXXXXX)"
finish() {
  local rc=$?
  trap - EXIT INT TERM
  set +e; trap "" PIPE HUP INT  # finish the teardown even if the terminal or pipe is gone
  ns_cleanup
  if [ "$rc" -ne 0 ]; then
    for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 8 "$f"; }; done
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
say() { echo "bench: $*" >&2; }

# The pair: A (10.201.0.1) and B (10.201.0.2), no IPv6 chatter.
ns_add a; ns_add b; ns_quiet a; ns_quiet b
veth_pair a 10.201.0.1/24 b 10.201.0.2/24

TCK=$(getconf CLK_TCK)
# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p f
  for p in "$@"; do
    # Fields after the ")" of comm: state is field 3, utime 14, stime 15.
    f=$(sed -E 's/^.*\) //' "/proc/$p/stat")
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# measure NAME DST PID...: ping RTT then iperf3 to DST (from A to a server
# in B); prints "mbps rtt_ms cpu_s_per_gb" (cpu "-" without PIDs).
measure() {
  local name="$1" dst="$2"; shift 2
  local rtt mbps bytes t0 t1 cpu
  wait_for 20 nsx a ping -n -c 1 -W 1 "$dst" || die "$name: $dst unreachable"
  rtt=$(nsx a ping -n -q -c 50 -i 0.05 -W 1 "$dst" | sed -nE 's|.*= [0-9.]+/([0-9.]+)/.*|\1|p')
  nsx b iperf3 -s -1 -p 5201 >"$DIR/iperf-server-$name.log" 2>&1 &
  local srv=$!
  wait_for 5 sh -c "ip netns exec ${NS_PREFIX}b ss -ltn | grep -q ':5201 '" || die "$name: iperf3 server did not start"
  [ $# -eq 0 ] || t0=$(cpu_ticks "$@")
  nsx a iperf3 -c "$dst" -p 5201 -t "$IPERF_SECS" -J >"$DIR/iperf-$name.json" 2>"$DIR/iperf-$name.err" \
    || { cat "$DIR/iperf-$name.err" >&2; die "$name: iperf3 failed"; }
  [ $# -eq 0 ] || t1=$(cpu_ticks "$@")
  wait "$srv" 2>/dev/null || true
  read -r mbps bytes < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("%.0f %d" % (e["bits_per_second"] / 1e6, e["bytes"]))' "$DIR/iperf-$name.json")
  if [ $# -eq 0 ]; then cpu="-"; else
    cpu=$(python3 -c 'import sys; t, tck, b = map(float, sys.argv[1:]); print("%.2f" % ((t / tck) / (b / 1e9)))' \
      "$((t1 - t0))" "$TCK" "$bytes")
  fi
  say "$name: ${mbps} Mbit/s, rtt ${rtt} ms, cpu ${cpu} s/GB"
  echo "$mbps $rtt $cpu"
}

# ---- plain veth ----
say "plain veth"
measure veth 10.201.0.2 >"$DIR/m-veth"
read -r veth_mbps veth_rtt _ <"$DIR/m-veth"

# ---- tinc 1.0, switch mode ----
say "tinc $(tincd --version | awk 'NR==1 {print $3}') (switch mode, default cipher)"
for n in a b; do
  d="$DIR/tinc-$n"; mkdir -p "$d/hosts"
  {
    echo "Name = $n"; echo "Mode = switch"; echo "Interface = tinc0"; echo "AddressFamily = ipv4"
    [ "$n" = a ] && echo "ConnectTo = b"
  } >"$d/tinc.conf"
  ip="10.201.0.1"; ov="10.202.0.1"; [ "$n" = b ] && { ip="10.201.0.2"; ov="10.202.0.2"; }
  printf 'Address = %s\nPort = 655\n' "$ip" >"$d/hosts/$n"
  printf '#!/bin/sh\nip link set "$INTERFACE" up\nip addr add %s/24 dev "$INTERFACE"\n' "$ov" >"$d/tinc-up"
  chmod +x "$d/tinc-up"
  tincd -c "$d" -K 2048 </dev/null >/dev/null 2>&1
done
cp "$DIR/tinc-a/hosts/a" "$DIR/tinc-b/hosts/a"
cp "$DIR/tinc-b/hosts/b" "$DIR/tinc-a/hosts/b"
ip netns exec "${NS_PREFIX}b" tincd -c "$DIR/tinc-b" -D --pidfile="$DIR/tinc-b.pid" >"$DIR/tinc-b.log" 2>&1 &
tinc_b=$!
ip netns exec "${NS_PREFIX}a" tincd -c "$DIR/tinc-a" -D --pidfile="$DIR/tinc-a.pid" >"$DIR/tinc-a.log" 2>&1 &
tinc_a=$!
measure tinc 10.202.0.2 "$tinc_a" "$tinc_b" >"$DIR/m-tinc"
read -r tinc_mbps tinc_rtt tinc_cpu <"$DIR/m-tinc"
tinc_rss=$(rss_kib "$tinc_a")
kill "$tinc_a" "$tinc_b" 2>/dev/null || true
wait "$tinc_a" "$tinc_b" 2>/dev/null || true

# ---- cloudy ----
say "cloudy ($BIN)"
pa=$("$BIN" keygen "$DIR/a.key"); pb=$("$BIN" keygen "$DIR/b.key")
cloudy_conf "$DIR/a.conf" a "$DIR/a.key" 10.203.0.1/24
cloudy_peer "$DIR/a.conf" b "$pb" 10.201.0.2:6556
cloudy_conf "$DIR/b.conf" b "$DIR/b.key" 10.203.0.2/24
cloudy_peer "$DIR/b.conf" a "$pa" 10.201.0.1:6556
start_cloudy() { # NS NAME; sets $started to its pid
  ip netns exec "$NS_PREFIX$1" "$BIN" -c "$DIR/$2.conf" -s "$DIR/$2.sock" daemon >>"$DIR/cloudy-$2.log" 2>&1 &
  started=$!
  wait_for 10 "$BIN" -s "$DIR/$2.sock" status || die "cloudy $2 did not start"
}
start_cloudy a a; cl_a=$started
start_cloudy b b; cl_b=$started
measure cloudy 10.203.0.2 "$cl_a" "$cl_b" >"$DIR/m-cloudy"
read -r cl_mbps cl_rtt cl_cpu <"$DIR/m-cloudy"
cl_rss1=$(rss_kib "$cl_a")
kill "$cl_a"; wait "$cl_a" 2>/dev/null || true

# 50 peers: b plus 49 with fresh keys whose endpoints do not answer.
cloudy_conf "$DIR/a.conf" a "$DIR/a.key" 10.203.0.1/24
cloudy_peer "$DIR/a.conf" b "$pb" 10.201.0.2:6556
for i in $(seq 1 49); do
  cloudy_peer "$DIR/a.conf" "p$i" "$("$BIN" keygen "$DIR/p$i.key")" "10.201.0.2:$((7000 + i))"
done
start_cloudy a a; cl_a=$started
sleep 10
cl_rss50=$(rss_kib "$cl_a")
# The shipped binary is stripped; measure a stripped copy whatever the profile.
strip -o "$DIR/cloudy.stripped" "$BIN"
size=$(stat -c %s "$DIR/cloudy.stripped")

# ---- report ----
ratio() { python3 -c 'import sys
a, b = sys.argv[1:]
try: print("%.2f" % (float(a) / float(b)))
except Exception: print("-")' "$1" "$2"; }
yesno() { python3 -c 'import sys
try: print("yes" if eval(sys.argv[1], {}) else "**no**")
except Exception: print("-")' "$1"; }
kind=$(file -b "$BIN" 2>/dev/null | grep -oE 'static-pie linked|statically linked|dynamically linked' || true)
table=$(cat <<EOF
| metric | plain veth | tinc 1.0 | cloudy | cloudy/tinc | target | met |
|---|---:|---:|---:|---:|---|---|
| TCP throughput, Mbit/s | $veth_mbps | $tinc_mbps | $cl_mbps | $(ratio "$cl_mbps" "$tinc_mbps") | ≥ 2× tinc | $(yesno "$cl_mbps >= 2 * $tinc_mbps") |
| ping RTT avg, ms | $veth_rtt | $tinc_rtt | $cl_rtt | $(ratio "$cl_rtt" "$tinc_rtt") | ≤ tinc | $(yesno "$cl_rtt <= $tinc_rtt") |
| CPU s per GB (both ends) | - | $tinc_cpu | $cl_cpu | $(ratio "$cl_cpu" "$tinc_cpu") | ≤ ½ tinc | $(yesno "$cl_cpu <= 0.5 * $tinc_cpu") |
| RSS, 1 peer, KiB | - | $tinc_rss | $cl_rss1 | $(ratio "$cl_rss1" "$tinc_rss") | | |
| RSS, 50 peers idle, KiB | - | - | $cl_rss50 | | ≤ 2048 | $(yesno "$cl_rss50 <= 2048") |
| binary (stripped), bytes | - | $(stat -c %s "$(command -v tincd)") (dynamic) | $size | | ≤ 1048576 | $(yesno "$size <= 1048576") |
EOF
)
echo
echo "$table"
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<EOF
# Benchmark: cloudy vs tinc 1.0 vs plain veth

Generated by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d); do not edit by hand.

- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)
- command: \`make bench\` (as root), \`IPERF_SECS=$IPERF_SECS\`
- setup: two network namespaces joined by one veth (underlay 10.201.0.0/24); each
  tunnel runs one daemon per namespace; iperf3 TCP from A to B for $IPERF_SECS s;
  RTT = average of 50 pings 0.05 s apart; CPU = utime+stime of both daemons
  during the iperf3 run, per GB received; RSS = VmRSS after the run (1 peer) and
  10 s after start with 50 configured peers (49 unreachable).
- tinc: Debian's $(tincd --version | awk 'NR==1 {print $1, $2, $3}'), \`Mode = switch\`, default cipher
  and digest, 2048-bit RSA keys.
- cloudy: $(basename "$BIN") at \`${BIN#"$root"/}\`${kind:+ ($kind)}.

$table
EOF
say "wrote $OUT"
