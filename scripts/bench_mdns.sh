#!/usr/bin/env bash
# mDNS/DNS-SD benchmark (issue 4), cloudy vs Avahi, in network namespaces:
#   - publish-to-visible: time from starting a publisher in namespace `pub`
#     until a streaming `avahi-browse -rpk` in namespace `obs` prints the
#     resolved service (median of $ROUNDS, default 5; a fresh instance name
#     per round), and the time from unpublish until obs drops it;
#   - RSS (VmRSS) of avahi-daemon: idle, publishing 50 services, and with
#     50 services cached (the observer after browsing them);
#   - one-shot unicast query latency: `dig -p 5353 @ADDR HOST.local A`
#     from obs, median of $DIG_ROUNDS (default 20): dig's "Query time" and
#     the wall time of the dig command;
#   - avahi-daemon startup time (spawn to "Server startup complete").
# The cloudy half runs the same measure_* functions with cloudy's commands
# in namespace `cl` against the same observer (the `cloudy_*` hooks), plus
# cloudy's RSS with the same 50 services cached; its rows print "-" when
# the binary cannot publish.
# Prints a markdown table with the targets of issue 4; BENCH_MDNS_OUT=FILE
# also writes it there, BENCH_MDNS_DOC=FILE replaces (or appends) its own
# section of FILE (`make bench`: docs/bench.md, after scripts/bench.sh).
# Needs root and `scripts/deps.sh mdns`. Not a test: it never fails on a
# missed target, only on a broken run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
NS_PREFIX="cym$$"
# shellcheck source=netns.sh
. "$here/netns.sh"
# shellcheck source=doc_section.sh
. "$here/doc_section.sh"
need_root "bench_mdns.sh"
for c in avahi-daemon avahi-browse avahi-publish dbus-daemon dig unshare; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || die "$c missing (scripts/deps.sh mdns)"
done
ROUNDS="${ROUNDS:-5}"
DIG_ROUNDS="${DIG_ROUNDS:-20}"
TYPE="_bench._tcp"

DIR="$(mktemp -d /tmp/cloudy-bench-mdns.XXXXXX)"
BG_PIDS=()
finish() {
  local rc=$? p
  trap - EXIT INT TERM
  set +e; trap "" PIPE HUP INT
  exec 2>/dev/null  # no "Killed" job notices from the teardown
  for p in "${BG_PIDS[@]:-}"; do [ -z "$p" ] || kill -KILL "$p" 2>/dev/null; done
  ns_cleanup
  if [ "$rc" -ne 0 ]; then
    for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 8 "$f"; }; done
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
say() { echo "bench-mdns: $*" >&2; }

# nsexec NS CMD...: like nsx, but exec'ed, so that `nsexec … &` leaves the
# command's own pid in $! (nsx is a function: $! would be a subshell).
nsexec() { local ns="$NS_PREFIX$1"; shift; exec ip netns exec "$ns" "$@"; }

# ns_kill_comm NS COMM: SIGTERM the processes named COMM in namespace NS.
ns_kill_comm() {
  local p
  for p in $(ip netns pids "$NS_PREFIX$1" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" != "$2" ] || kill -TERM "$p" 2>/dev/null || true
  done
}

# now_us: wall clock in microseconds (no fork).
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Topology: one bridge; pub (Avahi publisher), obs (observer: Avahi +
# avahi-browse + dig), cl (where cloudy runs). IPv4 only.
ns_add br; bridge_add br br0
ns_add pub; ns_add obs; ns_add cl
for n in pub obs cl; do ns_quiet "$n"; done
plug br br0 pub eth0 10.201.0.1/24
plug br br0 obs eth0 10.201.0.2/24
plug br br0 cl eth0 10.201.0.3/24
PUB_ADDR=10.201.0.1
CL_ADDR=10.201.0.3

# ---------------------------------------------------------------- Avahi --

# bus NS: DBUS_SYSTEM_BUS_ADDRESS of the private bus of namespace NS: an
# abstract socket, which belongs to the network namespace (and needs no
# directory the dropped-root `avahi` user may enter: mktemp -d is 0700).
bus() { echo "unix:abstract=cloudy-test-dbus-$1"; }

# avahi_start NS [SERVICES_DIR]: private dbus-daemon + avahi-daemon in NS
# (host name bench-NS; the bus is started once and kept across restarts);
# see tests/src/mdns.rs for why each piece is there.
# Sets AVAHI_PID_<NS> and AVAHI_START_MS_<NS>.
avahi_start() {
  local n="$1" svc="${2:-}" conf="$DIR/avahi-$n.conf" t0 t1 pid
  # One bus per namespace, kept across avahi-daemon restarts.
  if [ ! -s "$DIR/dbus-$n.addr" ]; then
    cat >"$DIR/dbus-$n.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>$(bus "$n")</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
    (nsexec "$n" dbus-daemon --nofork --print-address=1 --config-file="$DIR/dbus-$n.conf" \
      >"$DIR/dbus-$n.addr" 2>"$DIR/dbus-$n.log") &
    BG_PIDS+=($!)
    wait_for 10 grep -q '^unix:' "$DIR/dbus-$n.addr" || die "dbus-daemon in $n did not start"
  fi
  cat >"$conf" <<EOF
[server]
host-name=bench-$n
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
EOF
  local services="mount -t tmpfs -o mode=0755,size=64k cyt-avahi-services /etc/avahi/services"
  [ -z "$svc" ] || services="mount --bind '$svc' /etc/avahi/services"
  rm -f "$DIR/avahi-$n.log"
  t0=$(now_us)
  DBUS_SYSTEM_BUS_ADDRESS="$(bus "$n")" nsexec "$n" unshare -m --propagation private sh -c \
    "mount -t tmpfs -o mode=0755,size=1m cyt-avahi-run /run && mkdir -p /run/avahi-daemon \
     && $services && exec avahi-daemon --no-chroot --no-rlimits --no-proc-title -f '$conf'" \
    >"$DIR/avahi-$n.log" 2>&1 &
  pid=$!
  BG_PIDS+=("$pid")
  local i
  for ((i = 0; i < 1000; i++)); do
    grep -q 'Server startup complete' "$DIR/avahi-$n.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "avahi-daemon in $n exited: $(tail -n 5 "$DIR/avahi-$n.log")"
    sleep 0.01
  done
  grep -q 'Server startup complete' "$DIR/avahi-$n.log" || die "avahi-daemon in $n did not start"
  t1=$(now_us)
  printf -v "AVAHI_PID_$n" '%s' "$pid"
  printf -v "AVAHI_START_MS_$n" '%s' "$(((t1 - t0) / 1000))"
}

# avahi_publish NAME TYPE PORT: avahi-publish in pub (background).
AVAHI_PUB_PID=
avahi_publish() {
  DBUS_SYSTEM_BUS_ADDRESS="$(bus pub)" nsexec pub avahi-publish -s "$1" "$2" "$3" "k=v" \
    >>"$DIR/avahi-publish.log" 2>&1 &
  AVAHI_PUB_PID=$!
  BG_PIDS+=("$AVAHI_PUB_PID")
}
# avahi_unpublish NAME: kill avahi-publish (avahi-daemon sends goodbyes).
avahi_unpublish() {
  kill -TERM "$AVAHI_PUB_PID" 2>/dev/null || true
  wait "$AVAHI_PUB_PID" 2>/dev/null || true
}
avahi_pid() { echo "$AVAHI_PID_pub"; }

# ---------------------------------------------------------------- cloudy --
# cloudy runs in namespace `cl` (eth0 10.201.0.3/24, on the same bridge as
# obs) as node `cl` of cloud `bench` (host name cl.bench.local), with mDNS
# on eth0 (`list mdns_interface 'eth0'`) besides its overlay TAP (no
# peers). Each hook returns non-zero when it cannot do its job; the cloudy
# rows are then skipped ("-").
CL_NODE=cl
CL_CLOUD=bench
CL_PID=
CL_BIN=
# cl_cli ARGS...: the console client against cl's daemon.
cl_cli() { "$CL_BIN" -c "$DIR/cl.conf" -s "$DIR/cl.sock" "$@" 2>>"$DIR/cloudy-cli.log"; }

# cloudy_start: start `cloudy daemon` in cl; return once its console
# answers (and it has a `publish` command).
cloudy_start() {
  CL_BIN="$(cloudy_bin)" || return 1
  [ -x "$CL_BIN" ] || return 1
  "$CL_BIN" keygen "$DIR/cl.key" >/dev/null || return 1
  printf '%s\n' "config agent" \
    "	option name '$CL_NODE'" "	option cloud '$CL_CLOUD'" \
    "	option key_file '$DIR/cl.key'" "	option listen_port '6556'" \
    "	option mode 'tap'" "	option interface 'cloudy0'" \
    "	list address '10.203.0.3/24'" "	list mdns_interface 'eth0'" \
    "	option log_level 'info'" >"$DIR/cl.conf"
  nsexec cl "$CL_BIN" -c "$DIR/cl.conf" -s "$DIR/cl.sock" daemon >>"$DIR/cloudy.log" 2>&1 &
  CL_PID=$!
  BG_PIDS+=("$CL_PID")
  local i
  for ((i = 0; i < 500; i++)); do
    cl_cli status >/dev/null && break
    kill -0 "$CL_PID" 2>/dev/null || { say "cloudy daemon exited: $(tail -n 5 "$DIR/cloudy.log")"; return 1; }
    sleep 0.02
  done
  cl_cli status >/dev/null || return 1
  "$CL_BIN" --help 2>&1 | grep -qw publish || { say "this cloudy has no publish command"; return 1; }
}
# cloudy_publish NAME TYPE PORT: `cloudy publish NAME TYPE PORT k=v` in cl
# (returns at once; visibility is measured from its start).
cloudy_publish() { cl_cli publish "$1" "$2" "$3" "k=v" >/dev/null; }
# cloudy_unpublish NAME: `cloudy unpublish NAME` (sends goodbyes).
cloudy_unpublish() { cl_cli unpublish "$1" >/dev/null; }
# cloudy_pid: pid of the cloudy daemon (nsexec exec'ed into it).
cloudy_pid() { [ -n "$CL_PID" ] && echo "$CL_PID"; }
# cloudy_host: the host name cloudy answers for (NODE.CLOUD.local).
cloudy_host() { echo "$CL_NODE.$CL_CLOUD.local"; }
# cloudy_publish_many N: publish up to N services (for RSS with N
# services); stops at the first refusal (the agent caps published
# services, limits::MDNS_MAX_SERVICES) and sets CL_PUBLISHED to the count.
CL_PUBLISHED=0
cloudy_publish_many() {
  local i
  for ((i = 1; i <= $1; i++)); do
    cl_cli publish "many $i" _many._tcp $((10000 + i)) "i=$i" >/dev/null || break
    CL_PUBLISHED=$i
  done
  [ "$CL_PUBLISHED" -gt 0 ]
}
# cloudy_cache_many TYPE N: `cloudy search TYPE --all` until cloudy has
# resolved N services of TYPE (published by pub's avahi-daemon), ≤ 20 s.
cloudy_cache_many() {
  local i n=0
  for ((i = 0; i < 100; i++)); do
    n=$(cl_cli --json search "$1" --all | grep -o '"instance"' | wc -l) || n=0
    [ "$n" -ge "$2" ] && return 0
    sleep 0.2
  done
  say "cloudy resolved only $n of $2 $1 services"
  return 1
}

# ------------------------------------------------------------- measuring --

# browse_start: a streaming avahi-browse of $TYPE in obs whose lines are
# timestamped (µs) into $DIR/browse.out; sets BROWSE_PID.
BROWSE_PID=
browse_start() {
  : >"$DIR/browse.out"
  (
    DBUS_SYSTEM_BUS_ADDRESS="$(bus obs)" nsx obs avahi-browse -rpk "$TYPE" 2>>"$DIR/browse.log" |
      while IFS= read -r l; do echo "${EPOCHREALTIME/./} $l"; done >>"$DIR/browse.out"
  ) &
  BROWSE_PID=$!
  BG_PIDS+=("$BROWSE_PID")
  sleep 0.5 # let it subscribe and send its first query
}
browse_stop() {
  ns_kill_comm obs avahi-browse
  wait "$BROWSE_PID" 2>/dev/null || true
}

# seen_at NAME EVENT: µs timestamp of the first browse line EVENT ('=' resolved,
# '-' removed) for instance NAME (avahi escapes a space as \032).
seen_at() {
  local esc="${1// /\\032}"
  # Through the environment: awk -v would turn \032 into a control byte.
  N="$esc" E="$2" awk '{ split($2, f, ";"); if (f[1] == ENVIRON["E"] && f[4] == ENVIRON["N"]) { print $1; exit } }' \
    "$DIR/browse.out"
}

# wait_seen NAME EVENT SECONDS: wait until seen_at prints something.
wait_seen() {
  local i
  for ((i = 0; i < $3 * 100; i++)); do
    [ -z "$(seen_at "$1" "$2")" ] || return 0
    sleep 0.01
  done
  return 1
}

# median: of the numbers on stdin (upper middle).
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int(NR / 2) + 1]; else print "-" }'; }

# measure_visible LABEL PUBLISH_FN UNPUBLISH_FN: $ROUNDS rounds; sets
# VIS_MS and GONE_MS (medians; gone: from unpublish to removal).
VIS_MS=-; GONE_MS=-
measure_visible() {
  local label="$1" pubf="$2" unpubf="$3" r name t0 t1 t2 t3 vis=() gone=()
  VIS_MS=-; GONE_MS=-
  browse_start
  for ((r = 1; r <= ROUNDS; r++)); do
    name="$label bench $r"
    t0=$(now_us)
    "$pubf" "$name" "$TYPE" $((8000 + r)) || { browse_stop; say "$label: publish failed"; return 1; }
    wait_seen "$name" = 10 || die "$label: $name not visible in obs within 10 s"
    t1=$(seen_at "$name" =)
    vis+=($(((t1 - t0) / 1000)))
    t2=$(now_us)
    "$unpubf" "$name"
    wait_seen "$name" - 10 || die "$label: $name still visible 10 s after unpublish"
    t3=$(seen_at "$name" -)
    gone+=($(((t3 - t2) / 1000)))
    say "$label round $r: visible after ${vis[-1]} ms, gone ${gone[-1]} ms after unpublish"
  done
  browse_stop
  VIS_MS=$(printf '%s\n' "${vis[@]}" | median)
  GONE_MS=$(printf '%s\n' "${gone[@]}" | median)
}

# measure_dig ADDR HOST: $DIG_ROUNDS one-shot queries from obs; sets
# DIG_Q_MS (dig's "Query time") and DIG_WALL_MS (the dig command), medians.
DIG_Q_MS=-; DIG_WALL_MS=-
measure_dig() {
  local addr="$1" host="$2" i t0 t1 out q=() w=()
  for ((i = 0; i < DIG_ROUNDS; i++)); do
    t0=$(now_us)
    out=$(nsx obs dig +tries=1 +time=2 +norecurse -p 5353 "@$addr" "$host" A) || die "dig @$addr $host failed"
    t1=$(now_us)
    grep -q "^$host\.[[:space:]].*IN[[:space:]]*A" <<<"$out" || die "dig @$addr $host: no A answer: $out"
    q+=("$(sed -nE 's/^;; Query time: ([0-9]+) msec.*/\1/p' <<<"$out")")
    w+=("$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1000 }')")
  done
  DIG_Q_MS=$(printf '%s\n' "${q[@]}" | median)
  DIG_WALL_MS=$(printf '%s\n' "${w[@]}" | median)
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------- run ----

# 50 static services for the RSS "50 services" rows (published by pub's
# avahi-daemon; cached by obs's after a browse).
mkdir -p "$DIR/services50"
for i in $(seq 1 50); do
  cat >"$DIR/services50/s$i.service" <<EOF
<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group><name>static $i</name>
<service><type>_static._tcp</type><port>$((9000 + i))</port><txt-record>i=$i</txt-record></service>
</service-group>
EOF
done

say "starting avahi-daemon in pub and obs"
avahi_start pub
avahi_start obs
sleep 1
rss_idle=$(rss_kib "$AVAHI_PID_obs")
avahi_start_ms="${AVAHI_START_MS_pub} ms, ${AVAHI_START_MS_obs} ms"
say "avahi-daemon startup: pub ${AVAHI_START_MS_pub} ms, obs ${AVAHI_START_MS_obs} ms; idle RSS ${rss_idle} KiB"

say "avahi: publish-to-visible, $ROUNDS rounds"
measure_visible avahi avahi_publish avahi_unpublish
avahi_vis=$VIS_MS; avahi_gone=$GONE_MS
say "avahi: dig, $DIG_ROUNDS queries"
measure_dig "$PUB_ADDR" bench-pub.local
avahi_dig_q=$DIG_Q_MS; avahi_dig_w=$DIG_WALL_MS

# RSS with 50 services: restart pub's avahi with the static services; obs
# caches them by browsing.
kill -TERM "$AVAHI_PID_pub"; wait "$AVAHI_PID_pub" 2>/dev/null || true
avahi_start pub "$DIR/services50"
wait_for 15 sh -c "DBUS_SYSTEM_BUS_ADDRESS='$(bus obs)' ip netns exec ${NS_PREFIX}obs avahi-browse -rptk _static._tcp | grep -c '^=' | grep -qx 50" \
  || die "obs did not resolve the 50 static services"
rss_pub50=$(rss_kib "$AVAHI_PID_pub")
rss_obs50=$(rss_kib "$AVAHI_PID_obs")
say "avahi-daemon RSS: idle ${rss_idle} KiB, publishing 50 ${rss_pub50} KiB, 50 cached ${rss_obs50} KiB"

cl_vis="-"; cl_gone="-"; cl_dig_q="-"; cl_dig_w="-"; cl_rss="-"; cl_rss50="-"; cl_rss_cached="-"; cl_start="-"
# cell VALUE UNIT: "VALUE UNIT", or "-" when there is no value.
cell() { if [ "$1" = "-" ] || [ -z "$1" ]; then echo "-"; else echo "$1 $2"; fi; }
# met A OP B: "yes"/"no" for the integer comparison, "-" without values.
met() {
  case "$1$3" in *-*|"") echo "-"; return ;; esac
  if [ "$1" "$2" "$3" ]; then echo yes; else echo no; fi
}

t0=$(now_us)
if cloudy_start; then
  cl_start="$((($(now_us) - t0) / 1000))"
  say "cloudy: publish-to-visible, $ROUNDS rounds"
  measure_visible cloudy cloudy_publish cloudy_unpublish || true
  cl_vis=$VIS_MS; cl_gone=$GONE_MS
  say "cloudy: dig, $DIG_ROUNDS queries"
  measure_dig "$CL_ADDR" "$(cloudy_host)"
  cl_dig_q=$DIG_Q_MS; cl_dig_w=$DIG_WALL_MS
  cl_rss=$(rss_kib "$(cloudy_pid)")
  # The 50 static services pub's avahi-daemon publishes, cached by cloudy.
  if cloudy_cache_many _static._tcp 50; then cl_rss_cached=$(rss_kib "$(cloudy_pid)"); fi
  if cloudy_publish_many 50; then sleep 2; cl_rss50=$(rss_kib "$(cloudy_pid)"); fi
  say "cloudy RSS: idle ${cl_rss} KiB, 50 cached ${cl_rss_cached} KiB, +${CL_PUBLISHED} published ${cl_rss50} KiB"
else
  say "cloudy could not be started with mDNS (see above): cloudy rows skipped"
fi
half_obs50=$([ -n "${rss_obs50:-}" ] && echo $((rss_obs50 / 2)) || echo -)

table="$(cat <<EOF
| mDNS measure | Avahi 0.8 (avahi-daemon) | cloudy | target | met |
|---|---|---|---|---|
| publish → visible in a remote avahi-browse (full probing), median of $ROUNDS | $(cell "$avahi_vis" ms) | $(cell "$cl_vis" ms) | cloudy ≤ Avahi | $(met "$cl_vis" -le "$avahi_vis") |
| unpublish → gone in the remote avahi-browse, median of $ROUNDS | $(cell "$avahi_gone" ms) | $(cell "$cl_gone" ms) | ≤ 2000 ms | $(met "$cl_gone" -le 2000) |
| \`dig -p 5353\` one-shot A query, dig's query time (1 ms resolution), median of $DIG_ROUNDS | $(cell "$avahi_dig_q" ms) | $(cell "$cl_dig_q" ms) | | |
| the same, wall time of the dig command (process start included) | $(cell "$avahi_dig_w" ms) | $(cell "$cl_dig_w" ms) | | |
| RSS idle (cloudy: whole agent, overlay TAP up) | $(cell "$rss_idle" KiB) | $(cell "$cl_rss" KiB) | | |
| RSS with 50 services cached (after browsing them) | $(cell "$rss_obs50" KiB) | $(cell "$cl_rss_cached" KiB) | cloudy ≤ ½ Avahi | $(met "$cl_rss_cached" -le "$half_obs50") |
| RSS publishing 50 services (cloudy: $CL_PUBLISHED, its cap, and the 50 cached) | $(cell "$rss_pub50" KiB) | $(cell "$cl_rss50" KiB) | | |
| daemon start to ready (avahi: host name probed; pub, obs) | ${avahi_start_ms} | $(cell "$cl_start" ms) | | |
EOF
)"
echo "$table"
if [ -n "${BENCH_MDNS_OUT:-}" ]; then
  {
    echo "mDNS benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r)"
    echo
    echo "$table"
  } >"$BENCH_MDNS_OUT"
  say "written to $BENCH_MDNS_OUT"
fi
# With BENCH_MDNS_DOC=FILE (make bench: docs/bench.md), replace the
# "## mDNS/DNS-SD" section of FILE with this run, or append it; the rest
# of FILE (the overlay, codec and store tables) is kept (doc_section.sh).
if [ -n "${BENCH_MDNS_DOC:-}" ]; then
  heading="## mDNS/DNS-SD: cloudy vs Avahi"
  {
    echo "Generated by \`make bench\` (scripts/bench_mdns.sh) on $(date -u +%Y-%m-%d); do not edit by hand."
    echo
    echo "- machine: $(nproc) cores, Linux $(uname -r)"
    echo "- setup: one bridge, IPv4 only; namespaces pub (publisher), obs (observer:"
    echo "  avahi-daemon, a streaming \`avahi-browse -rpk\`, dig) and cl (cloudy, mDNS on"
    echo "  eth0 via \`list mdns_interface\`, TAP up without peers). Visibility is timed"
    echo "  from starting \`avahi-publish\` (pub) or \`cloudy publish\` (cl) to obs printing"
    echo "  the resolved service; both probe their names first (RFC 6762 §8)."
    echo "- RSS: VmRSS; Avahi's \"50 cached\" is obs's avahi-daemon after browsing 50"
    echo "  static services of pub's; cloudy's is the whole agent after"
    echo "  \`cloudy search _static._tcp --all\` resolved the same 50."
    echo
    echo "$table"
  } | doc_section "$BENCH_MDNS_DOC" "$heading"
  say "section \"$heading\" written to $BENCH_MDNS_DOC"
fi
