#!/usr/bin/env bash
# Store benchmark: ten cloudy boxes with stores in network namespaces on
# one LAN (full overlay mesh), one 64 MiB file put 3-of-10 from box1 and
# got back, measured in the same run:
#   - put and get MB/s (file bytes per second of wall time);
#   - CPU seconds per GB stored, summed over the ten daemons and the client;
#   - the largest daemon RSS (VmHWM, after the put) and the client's
#     max RSS (put and get, getrusage);
#   - overlay ping RTT box1 -> box2 while the put runs vs idle.
# Tahoe-LAFS on the same shape is not measured yet (see docs/bench.md).
#
#   bash scripts/bench_store.sh            # root; CLOUDY_BIN=... to pick the binary
#   BENCH_STORE_DOC=docs/bench.md ...      # also write the "## Store" section of that file
#   SIZE_MIB=64 ...                        # file size
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
NS_PREFIX="cyb$$"
# shellcheck source=netns.sh
. "$here/netns.sh"
# shellcheck source=doc_section.sh
. "$here/doc_section.sh"
need_root "bench_store.sh"
BIN="$(cloudy_bin)"
SIZE_MIB="${SIZE_MIB:-64}"
N=10
DIR="$(mktemp -d /tmp/cloudy-bench-store.XXXXXX)"
finish() {
  local rc=$?
  set +e
  ns_cleanup
  [ "$rc" -eq 0 ] || for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 5 "$f"; }; done
  rm -rf "$DIR"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
say() { echo "bench_store: $*" >&2; }

ns_add br; ns_quiet br
bridge_add br lan
for i in $(seq 1 $N); do
  ns_add "box$i"; ns_quiet "box$i"
  plug br lan "box$i" eth0 "10.201.0.$i/24"
  "$BIN" keygen "$DIR/box$i.key" >"$DIR/box$i.pub"
done
for i in $(seq 1 $N); do
  mkdir -p "$DIR/store$i"
  cloudy_conf "$DIR/box$i.conf" "box$i" "$DIR/box$i.key" "10.99.0.$i/24"
  sed -i "s/option log_level 'info'/option log_level 'warn'/" "$DIR/box$i.conf"
  for j in $(seq 1 $N); do
    [ "$i" = "$j" ] || cloudy_peer "$DIR/box$i.conf" "box$j" "$(cat "$DIR/box$j.pub")" "10.201.0.$j:6556"
  done
  printf "\nconfig store\n\toption path '%s'\n\toption quota '1G'\n\toption shares_needed '3'\n\toption shares_total '10'\n\toption shares_happy '10'\n" \
    "$DIR/store$i" >>"$DIR/box$i.conf"
done
PIDS=()
for i in $(seq 1 $N); do
  ip netns exec "${NS_PREFIX}box$i" "$BIN" -c "$DIR/box$i.conf" -s "$DIR/box$i.sock" daemon 2>"$DIR/box$i.log" &
  PIDS+=($!)
done
cl() { local b="$1"; shift; nsx "$b" "$BIN" -c "$DIR/$b.conf" -s "$DIR/$b.sock" "$@"; }
stores_ok() { [ "$(cl box1 --json search _cloudy-store._tcp | grep -o '"instance"' | wc -l)" -ge $N ]; }
wait_for 60 stores_ok || die "box1 does not see $N storage boxes"
say "$N boxes up, every store found"

head -c $((SIZE_MIB << 20)) /dev/urandom >"$DIR/file"
# The daemons' processes (ip netns exec execs cloudy: same pid).
cpu_ticks() {
  local t=0 p a
  for p in "${PIDS[@]}"; do
    read -r -a a <"/proc/$p/stat"
    t=$((t + a[13] + a[14]))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
# run_measured OUT CMD...: wall seconds, client CPU seconds, client max RSS KiB.
run_measured() {
  local out="$1"; shift
  python3 - "$out" "$@" <<'EOF'
import resource, subprocess, sys, time
out = sys.argv[1]
t = time.monotonic()
with open(out, "wb") as f:
    r = subprocess.run(sys.argv[2:], stdout=f)
wall = time.monotonic() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
if r.returncode != 0:
    sys.exit(r.returncode)
print(f"{wall:.3f} {u.ru_utime + u.ru_stime:.3f} {u.ru_maxrss}")
EOF
}
# Idle RTT, then RTT during the put.
idle_rtt=$(nsx box1 ping -n -q -c 20 -i 0.05 10.99.0.2 | sed -nE 's|.*= [0-9.]+/([0-9.]+)/.*|\1|p')
nsx box1 ping -n -q -c 400 -i 0.02 10.99.0.2 >"$DIR/ping_put" 2>&1 &
ping_pid=$!
c0=$(cpu_ticks)
read -r put_wall put_cpu put_rss < <(run_measured "$DIR/cap" ip netns exec "${NS_PREFIX}box1" "$BIN" -c "$DIR/box1.conf" -s "$DIR/box1.sock" put "$DIR/file")
c1=$(cpu_ticks)
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
put_rtt=$(sed -nE 's|.*= [0-9.]+/([0-9.]+)/.*|\1|p' "$DIR/ping_put")
cap="$(cat "$DIR/cap")"
daemon_rss=0
for p in "${PIDS[@]}"; do
  r=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status")
  [ "$r" -gt "$daemon_rss" ] && daemon_rss=$r
done
read -r get_wall get_cpu get_rss < <(run_measured "$DIR/back" ip netns exec "${NS_PREFIX}box1" "$BIN" -c "$DIR/box1.conf" -s "$DIR/box1.sock" get "$cap")
c2=$(cpu_ticks)
cmp -s "$DIR/file" "$DIR/back" || die "get returned other bytes"

mb=$(awk -v m="$SIZE_MIB" 'BEGIN {print m * 1048576 / 1e6}')
table="$(awk -v mb="$mb" -v pw="$put_wall" -v gw="$get_wall" -v pc="$put_cpu" -v gc="$get_cpu" \
  -v dp="$((c1 - c0))" -v dg="$((c2 - c1))" -v hz="$HZ" -v pr="$put_rss" -v gr="$get_rss" \
  -v dr="$daemon_rss" -v ir="$idle_rtt" -v prt="$put_rtt" -v size="$SIZE_MIB" 'BEGIN {
  gb = mb / 1000
  printf "| measure (%d MiB, 3-of-10, 10 boxes) | cloudy |\n|---|---:|\n", size
  printf "| put MB/s | %.1f |\n", mb / pw
  printf "| get MB/s | %.1f |\n", mb / gw
  printf "| put CPU s per GB (client + 10 daemons) | %.1f |\n", (pc + dp / hz) / gb
  printf "| get CPU s per GB (client + 10 daemons) | %.1f |\n", (gc + dg / hz) / gb
  printf "| storage daemon peak RSS (VmHWM) | %d KiB |\n", dr
  printf "| client max RSS: put / get | %d / %d KiB |\n", pr, gr
  printf "| overlay ping RTT idle / during put | %s / %s ms (%.1fx) |\n", ir, prt, (ir > 0 ? prt / ir : 0)
}')"
echo "$table"
if [ -n "${BENCH_STORE_DOC:-}" ]; then
  heading="## Store"
  {
    echo "- command: \`BENCH_STORE_DOC=docs/bench.md bash scripts/bench_store.sh\` (part of \`make bench\`)"
    echo "- $(date -u +%Y-%m-%d), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)); every box, the client and the overlay share them"
    echo "- binary: $("$BIN" version), static musl release"
    echo
    echo "$table"
    echo
    echo "Tahoe-LAFS 1.20 on the same shape is not measured by this script yet; the issue's"
    echo "reference figures for it here were 15-17 MB/s put and 22-26 MB/s get at 64 MiB."
  } | doc_section "$BENCH_STORE_DOC" "$heading"
  say "section \"$heading\" written to $BENCH_STORE_DOC"
fi
