#!/usr/bin/env bash
# `make demo`: five cloudy boxes in network namespaces on this machine.
#
#   box1 (hub) box2 box3 box4 --- one LAN (10.201.0.0/24) --- router (NAT)
#                                                               |
#                                                  box5 (10.201.1.0/24)
#
# box1 becomes the cloud's authority (`cloudy authority init`) and invites
# the others: `cloudy invite boxN` prints a one-time token, and `cloudy
# join TOKEN` on the new box makes its key, fetches its certificate and
# writes its whole config, which lists only box1. Certificates spread over
# the overlay, so every box admits every member; box5 sits behind a
# masquerading router and is found through box1's gossip. Overlay:
# 10.99.0.N/24.
# Everything is removed at the end, also on Ctrl-C. DEMO_KEEP=1 keeps the
# boxes running until Ctrl-C, to try them by hand.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
NS_PREFIX="cyd$$"
# shellcheck source=netns.sh
. "$here/netns.sh"
need_root "make demo"
BIN="$(cloudy_bin)"
[ -x "$BIN" ] || die "cloudy binary $BIN not found (make build)"

DIR="$(mktemp -d /tmp/cloudy-demo.XXXXXX)"
PIDS=()
finish() {
  local rc=$?
  trap - EXIT INT TERM
  set +e; trap "" PIPE HUP INT  # finish the teardown even if the terminal or pipe is gone
  echo
  echo "==> tearing down (namespaces ${NS_PREFIX}*, $DIR)"
  ns_cleanup
  if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
    echo "==> interrupted"
  elif [ "$rc" -ne 0 ]; then
    echo "==> demo failed; last daemon log lines:"
    for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 8 "$f"; }; done
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { echo; echo "==> $*"; }
cl() { local b="$1"; shift; "$BIN" -c "$DIR/$b.conf" -s "$DIR/$b.sock" "$@"; }

step "building the network (namespaces ${NS_PREFIX}*)"
ns_add br; ns_quiet br
bridge_add br lan
bridge_add br inner
for i in 1 2 3 4; do
  ns_add "box$i"
  plug br lan "box$i" eth0 "10.201.0.$i/24"
done
ns_add nat
plug br lan nat eth0 10.201.0.254/24
plug br inner nat eth1 10.201.1.1/24
nat_rules nat
ns_add box5
plug br inner box5 eth0 10.201.1.2/24
ip -n "${NS_PREFIX}box5" route add default via 10.201.1.1
echo "    LAN 10.201.0.0/24: box1 .1  box2 .2  box3 .3  box4 .4  router .254"
echo "    behind NAT 10.201.1.0/24: box5 .2 (router masquerades as 10.201.0.254)"

step "box1 becomes the cloud's authority"
mkdir -p "$DIR/box1"
cloudy_conf "$DIR/box1.conf" box1 "$DIR/box1.key" "10.99.0.1/24"
printf "\toption certificate_file '%s'\n\toption authority_key_file '%s'\n" \
  "$DIR/box1/cert" "$DIR/box1/authority.key" >>"$DIR/box1.conf"
cl box1 authority init | sed 's/^/    /'
# Every box also keeps shares for the cloud: 3-of-5, in its own directory.
store_conf() {
  mkdir -p "$DIR/$1/store"
  printf "\nconfig store\n\toption path '%s'\n\toption quota '64M'\n\toption shares_needed '3'\n\toption shares_total '5'\n\toption shares_happy '4'\n" \
    "$DIR/$1/store" >>"$DIR/$1.conf"
}
store_conf box1
ip netns exec "${NS_PREFIX}box1" "$BIN" -c "$DIR/box1.conf" -s "$DIR/box1.sock" daemon \
  2>"$DIR/box1.log" &
PIDS+=($!)
wait_for 10 cl box1 status || die "box1 did not start (see $DIR/box1.log)"

step "box1 invites box2..box5; each joins with its token"
for i in 2 3 4 5; do
  token="$(cl box1 invite "box$i" "10.99.0.$i/24" | head -n 1)"
  echo "    box1: cloudy invite box$i 10.99.0.$i/24 -> ${token:0:40}..."
  mkdir -p "$DIR/box$i"
  nsx "box$i" "$BIN" -c "$DIR/box$i.conf" join "$token" \
    --key "$DIR/box$i.key" --cert "$DIR/box$i/cert" | sed "s/^/    box$i: /"
  store_conf "box$i"
done
echo "    box5's whole config, as cloudy join wrote it:"
sed 's/^/      /' "$DIR/box5.conf"

step "starting the 4 new boxes"
t0=$EPOCHREALTIME
for i in 2 3 4 5; do
  ip netns exec "${NS_PREFIX}box$i" "$BIN" -c "$DIR/box$i.conf" -s "$DIR/box$i.sock" daemon \
    2>"$DIR/box$i.log" &
  PIDS+=($!)
done
for i in 2 3 4 5; do
  wait_for 10 cl "box$i" status || die "box$i did not start (see $DIR/box$i.log)"
done

# peers_ok BOX N: BOX sees N peers that are up or relayed.
peers_ok() {
  local n
  n=$(cl "$1" --json peers | grep -oE '"state" *: *"(up|relayed)"' | wc -l)
  [ "$n" -ge "$2" ]
}
step "waiting for the mesh (at most 60 s)"
wait_for 30 peers_ok box1 4 || die "box1 does not see 4 peers"
wait_for 60 peers_ok box5 4 || die "box5 does not see 4 peers"
mesh_secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
echo "    mesh formed in $mesh_secs s"
# The NAT'ed box first hears where the others are from box1's gossip (relayed);
# give hole punching and the first RTT probes a moment.
rtt_ok() { ! cl "$1" --json peers | grep -qE '"rtt_us" *: *null'; }
wait_for 15 rtt_ok box5 || true

step "cloudy peers on box1 (the hub)"
cl box1 peers
step "cloudy peers on box5 (behind NAT, its config lists only box1)"
cl box5 peers

ok=0; total=0
ping_from() {
  local from="$1" j rtt
  for j in 1 2 3 4 5; do
    [ "box$j" = "$from" ] && continue
    total=$((total + 1))
    if out=$(nsx "$from" ping -n -c 3 -i 0.2 -W 1 "10.99.0.$j" 2>&1); then
      rtt=$(sed -nE 's|.*= [0-9.]+/([0-9.]+)/.*|\1|p' <<<"$out")
      printf "    %s -> box%s (10.99.0.%s): ok, %s ms\n" "$from" "$j" "$j" "$rtt"
      ok=$((ok + 1))
    else
      printf "    %s -> box%s (10.99.0.%s): NO REPLY\n" "$from" "$j" "$j"
    fi
  done
}
step "pinging every overlay address from box1"
ping_from box1
step "pinging every overlay address from box5 (through the NAT)"
ping_from box5

step "discovery: box3 and box5 publish services, box1 searches the micro cloud"
cl box3 publish web http 8080 path=/
cl box5 publish files ftp 21
found=0
search_ok() { [ "$(cl box1 --json search | grep -oE '"instance":"(web|files)"' | wc -l)" -ge 2 ]; }
if wait_for 10 search_ok; then found=1; fi
cl box1 search

step "store: box5 puts a file 3-of-5 (encrypted on box5; any 3 shares rebuild it)"
stores_ok() { [ "$(cl box5 --json search _cloudy-store._tcp | grep -o '"instance"' | wc -l)" -ge 5 ]; }
wait_for 20 stores_ok || die "box5 does not see the 5 storage boxes"
head -c 3000000 /dev/urandom >"$DIR/photo.jpg"
cap="$(nsx box5 "$BIN" -c "$DIR/box5.conf" -s "$DIR/box5.sock" put "$DIR/photo.jpg")"
echo "    box5: cloudy put photo.jpg -> $cap"
nsx box5 "$BIN" -c "$DIR/box5.conf" -s "$DIR/box5.sock" check "$cap" | sed 's/^/    /'
echo "    killing box3 and box4 (kill -9)"
kill -9 "${PIDS[2]}" "${PIDS[3]}"
{ wait "${PIDS[2]}" "${PIDS[3]}"; } 2>/dev/null || true
nsx box1 "$BIN" -c "$DIR/box1.conf" -s "$DIR/box1.sock" get "$cap" -o "$DIR/back.jpg"
stored=0
if cmp -s "$DIR/photo.jpg" "$DIR/back.jpg"; then
  stored=1
  echo "    box1: cloudy get CAP -o back.jpg: 3000000 bytes, identical, with two of five boxes gone"
fi

step "summary"
echo "    5 boxes (one behind NAT), mesh formed in $mesh_secs s, $ok/$total pings answered."
[ "$stored" -eq 1 ] && echo "    a file stored 3-of-5 came back byte for byte after two boxes were killed."
[ "$stored" -eq 1 ] || die "the stored file did not come back"
[ "$found" -eq 1 ] && echo "    box1 found the services of box3 and box5 by mDNS over the overlay."
[ "$found" -eq 1 ] || die "box1 did not find the published services"
[ "$ok" -eq "$total" ] || die "$((total - ok)) pings failed"
if [ -n "${DEMO_KEEP:-}" ]; then
  echo "    DEMO_KEEP set: running until Ctrl-C. Try, in another shell:"
  echo "      ip netns exec ${NS_PREFIX}box5 ping 10.99.0.3"
  echo "      $BIN -s $DIR/box1.sock peers"
  while true; do sleep 1; done
fi
