#!/usr/bin/env bash
# `make bench`: cloudy against tinc 1.0 (switch mode) and the plain veth,
# over one pair of namespaces joined by a veth, in one run:
#   - iperf3 TCP throughput, 10 s, and its retransmits (% of segments);
#   - ping RTT, 50 pings 0.05 s apart (average);
#   - CPU seconds per GB moved (utime+stime of both daemons, /proc/PID/stat);
#   - RSS (VmRSS) of cloudy with 1 and with 50 configured peers, and of tincd;
#   - cloudy in raw mode (AF_PACKET on eth1 of A and B, same keys): iperf3
#     TCP from LAN host PA to LAN host PB (one /24, default offloads), each
#     joined by a veth to eth1 of its box; throughput against tap mode's and
#     retransmits;
#   - size of the stripped static cloudy binary, against SIZE_BUDGET_KIB of
#     boards/x86_64.conf (the budget `make cross` enforces for that build).
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
# Offered load of the full-size UDP row (raw mode).
UDP_OFFER="${UDP_OFFER:-500M}"
# TCP payload of a full-size segment (1500-byte MTU, timestamps): bytes sent
# divided by this is the segment count retransmits are a percentage of.
SEGMENT=1448
# The size budget of this build: the x86_64 board's, as `make cross` checks it.
BOARD_CONF="$root/boards/x86_64.conf"
budget_kib=$(sed -nE 's/^SIZE_BUDGET_KIB=([0-9]+)[[:space:]]*$/\1/p' "$BOARD_CONF" 2>/dev/null || true)
[ -n "$budget_kib" ] || die "no SIZE_BUDGET_KIB=N in ${BOARD_CONF#"$root"/}"
budget=$((budget_kib * 1024))

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
# A LAN host behind each (raw mode): PA and PB, one /24, eth1 of A and B
# without an address; offloads left as the kernel sets them.
for n in a b; do
  ns_add "p$n"; ns_quiet "p$n"
  ip -n "$NS_PREFIX$n" link add eth1 type veth peer name eth0 netns "${NS_PREFIX}p$n"
  ip -n "$NS_PREFIX$n" link set eth1 up
  ip -n "${NS_PREFIX}p$n" link set eth0 up
done
ip -n "${NS_PREFIX}pa" addr add 192.168.77.10/24 dev eth0
ip -n "${NS_PREFIX}pb" addr add 192.168.77.20/24 dev eth0

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

# measure NAME CLIENT SERVER DST PID...: ping RTT then iperf3 from namespace
# CLIENT to a server in namespace SERVER at DST; prints "mbps rtt_ms
# cpu_s_per_gb retransmits retransmit_pct" (cpu "-" without PIDs).
measure() {
  local name="$1" cli="$2" srv_ns="$3" dst="$4"; shift 4
  local rtt mbps bytes retr retr_pct t0 t1 cpu
  wait_for 20 nsx "$cli" ping -n -c 1 -W 1 "$dst" || die "$name: $dst unreachable"
  rtt=$(nsx "$cli" ping -n -q -c 50 -i 0.05 -W 1 "$dst" | sed -nE 's|.*= [0-9.]+/([0-9.]+)/.*|\1|p')
  nsx "$srv_ns" iperf3 -s -1 -p 5201 >"$DIR/iperf-server-$name.log" 2>&1 &
  local srv=$!
  wait_for 5 sh -c "ip netns exec $NS_PREFIX$srv_ns ss -ltn | grep -q ':5201 '" || die "$name: iperf3 server did not start"
  [ $# -eq 0 ] || t0=$(cpu_ticks "$@")
  nsx "$cli" iperf3 -c "$dst" -p 5201 -t "$IPERF_SECS" -J >"$DIR/iperf-$name.json" 2>"$DIR/iperf-$name.err" \
    || { cat "$DIR/iperf-$name.err" >&2; die "$name: iperf3 failed"; }
  [ $# -eq 0 ] || t1=$(cpu_ticks "$@")
  wait "$srv" 2>/dev/null || true
  read -r mbps bytes retr retr_pct < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]
r, s = e["sum_received"], e["sum_sent"]
retr = s.get("retransmits", 0)
print("%.0f %d %d %.3f" % (r["bits_per_second"] / 1e6, r["bytes"], retr,
                           100.0 * retr / max(s["bytes"] / float(sys.argv[2]), 1)))' \
    "$DIR/iperf-$name.json" "$SEGMENT")
  if [ $# -eq 0 ]; then cpu="-"; else
    cpu=$(python3 -c 'import sys; t, tck, b = map(float, sys.argv[1:]); print("%.2f" % ((t / tck) / (b / 1e9)))' \
      "$((t1 - t0))" "$TCK" "$bytes")
  fi
  say "$name: ${mbps} Mbit/s, rtt ${rtt} ms, cpu ${cpu} s/GB, ${retr} retransmits (${retr_pct} % of segments)"
  echo "$mbps $rtt $cpu $retr $retr_pct"
}

# ---- plain veth ----
say "plain veth"
measure veth a b 10.201.0.2 >"$DIR/m-veth"
read -r veth_mbps veth_rtt _ veth_retr veth_retr_pct <"$DIR/m-veth"

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
measure tinc a b 10.202.0.2 "$tinc_a" "$tinc_b" >"$DIR/m-tinc"
read -r tinc_mbps tinc_rtt tinc_cpu tinc_retr tinc_retr_pct <"$DIR/m-tinc"
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
measure cloudy a b 10.203.0.2 "$cl_a" "$cl_b" >"$DIR/m-cloudy"
read -r cl_mbps cl_rtt cl_cpu cl_retr cl_retr_pct <"$DIR/m-cloudy"
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
kill "$cl_a" "$cl_b"; wait "$cl_a" "$cl_b" 2>/dev/null || true

# ---- cloudy, raw mode: LAN host PA to LAN host PB ----
say "cloudy raw mode (eth1 of A and B; PA -> PB)"
cloudy_conf_raw "$DIR/a-raw.conf" a "$DIR/a.key" eth1
cloudy_peer "$DIR/a-raw.conf" b "$pb" 10.201.0.2:6556
cloudy_conf_raw "$DIR/b-raw.conf" b "$DIR/b.key" eth1
cloudy_peer "$DIR/b-raw.conf" a "$pa" 10.201.0.1:6556
start_cloudy a a-raw; raw_a=$started
start_cloudy b b-raw; raw_b=$started
measure raw pa pb 192.168.77.20 "$raw_a" "$raw_b" >"$DIR/m-raw"
read -r raw_mbps _ _ raw_retr raw_retr_pct <"$DIR/m-raw"
# Full-size frames that are not TCP (no MSS to clamp): 1472-byte UDP
# payloads make 1514-byte LAN frames, carried in outer datagrams the
# kernel fragments (1500-byte underlay).
nsx pb iperf3 -s -1 -p 5201 >"$DIR/iperf-server-rawudp.log" 2>&1 &
srv=$!
wait_for 5 sh -c "ip netns exec ${NS_PREFIX}pb ss -ltn | grep -q ':5201 '" || die "raw udp: iperf3 server did not start"
nsx pa iperf3 -c 192.168.77.20 -p 5201 -u -l 1472 -b "$UDP_OFFER" -t 5 -J >"$DIR/iperf-rawudp.json" 2>"$DIR/iperf-rawudp.err" \
  || { cat "$DIR/iperf-rawudp.err" >&2; die "raw udp: iperf3 failed"; }
wait "$srv" 2>/dev/null || true
read -r udp_mbps udp_loss < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
print("%.0f %.2f" % (s["bits_per_second"] / 1e6, s["lost_percent"]))' "$DIR/iperf-rawudp.json")
say "raw udp: ${udp_mbps} Mbit/s delivered of $UDP_OFFER offered, ${udp_loss} % lost"
kill "$raw_a" "$raw_b"; wait "$raw_a" "$raw_b" 2>/dev/null || true

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
| TCP retransmits, % of segments (count) | $veth_retr_pct ($veth_retr) | $tinc_retr_pct ($tinc_retr) | $cl_retr_pct ($cl_retr) | | | |
| TCP throughput, raw mode LAN to LAN, Mbit/s | - | - | $raw_mbps | $(ratio "$raw_mbps" "$cl_mbps") of tap | ≥ 50 % of tap | $(yesno "$raw_mbps >= 0.5 * $cl_mbps") |
| TCP retransmits, raw mode, % of segments (count) | - | - | $raw_retr_pct ($raw_retr) | | < 1 % | $(yesno "$raw_retr_pct < 1") |
| raw mode, 1472-byte UDP datagrams ($UDP_OFFER offered, outer fragmentation): Mbit/s delivered, % lost | - | - | $udp_mbps, $udp_loss % | | | |
| ping RTT avg, ms | $veth_rtt | $tinc_rtt | $cl_rtt | $(ratio "$cl_rtt" "$tinc_rtt") | ≤ tinc | $(yesno "$cl_rtt <= $tinc_rtt") |
| CPU s per GB (both ends) | - | $tinc_cpu | $cl_cpu | $(ratio "$cl_cpu" "$tinc_cpu") | ≤ ½ tinc | $(yesno "$cl_cpu <= 0.5 * $tinc_cpu") |
| RSS, 1 peer, KiB | - | $tinc_rss | $cl_rss1 | $(ratio "$cl_rss1" "$tinc_rss") | | |
| RSS, 50 peers idle, KiB | - | - | $cl_rss50 | | ≤ 2048 | $(yesno "$cl_rss50 <= 2048") |
| binary (stripped), bytes | - | $(stat -c %s "$(command -v tincd)") (dynamic) | $size | | ≤ $budget (SIZE_BUDGET_KIB=$budget_kib, boards/x86_64.conf) | $(yesno "$size <= $budget") |
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
  retransmits = iperf3's sender retransmits, in % of the segments sent (bytes /
  $SEGMENT); RTT = average of 50 pings 0.05 s apart; CPU = utime+stime of both
  daemons during the iperf3 run, per GB received; RSS = VmRSS after the run
  (1 peer) and 10 s after start with 50 configured peers (49 unreachable).
- raw mode: the same two boxes and keys, cloudy with \`option mode 'raw'\` and
  \`option raw_device 'eth1'\` (no overlay address); eth1 of A and of B is a veth
  to a LAN host namespace, PA (192.168.77.10/24) and PB (192.168.77.20/24), with
  the kernel's default offloads; iperf3 TCP from PA to PB for $IPERF_SECS s, in the
  same run right after the tap-mode measurements (tap daemons stopped).
  Target: at least half of tap mode's throughput, retransmits under 1 %.
  Bridged TCP has its MSS clamped to the overlay MTU (1392) by the boxes;
  full-size non-TCP frames are measured with iperf3 UDP, 1472-byte payloads
  (1514-byte frames) at $UDP_OFFER for 5 s: each crosses in one outer
  datagram that the kernel fragments.
- binary: stripped copy of the binary under test, against the size budget
  \`SIZE_BUDGET_KIB\` of \`boards/x86_64.conf\` (the one \`make cross\` enforces).
- tinc: Debian's $(tincd --version | awk 'NR==1 {print $1, $2, $3}'), \`Mode = switch\`, default cipher
  and digest, 2048-bit RSA keys.
- cloudy: $(basename "$BIN") at \`${BIN#"$root"/}\`${kind:+ ($kind)}.

$table
EOF
say "wrote $OUT"
