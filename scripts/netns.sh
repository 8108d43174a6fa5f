# Shell helpers for scripts that build little networks of namespaces
# (demo.sh, bench.sh). Source it; it defines functions only.
#
# Every namespace gets the prefix $NS_PREFIX (set it before use; default
# "cyx<pid>"), so `ns_cleanup` finds and removes exactly what this script
# made: it kills every process inside, then deletes the namespace. Call it
# from a trap on EXIT INT TERM.

NS_PREFIX=${NS_PREFIX:-cyx$$}
NS_MADE=()

die() { echo "error: $*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (network namespaces); run it as root"
}

# ns_add NAME: namespace ${NS_PREFIX}NAME with lo up; prints nothing.
ns_add() {
  local ns="$NS_PREFIX$1"
  ip netns add "$ns"
  NS_MADE+=("$ns")
  ip -n "$ns" link set lo up
}

# nsx NAME CMD...: run CMD in namespace ${NS_PREFIX}NAME.
nsx() {
  local ns="$NS_PREFIX$1"; shift
  ip netns exec "$ns" "$@"
}

# ns_quiet NAME: no IPv6 in the namespace (no DAD, RS, MLD chatter).
ns_quiet() {
  nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# bridge_add BRNS BRIDGE: a Linux bridge inside namespace BRNS.
bridge_add() {
  ip -n "$NS_PREFIX$1" link add "$2" type bridge
  ip -n "$NS_PREFIX$1" link set "$2" up
}

# plug BRNS BRIDGE NS IFNAME [ADDR/LEN]: veth from bridge BRIDGE (in BRNS)
# to interface IFNAME in NS, up, optionally addressed.
_veth_n=0
plug() {
  local brns="$NS_PREFIX$1" br="$2" ns="$NS_PREFIX$3" ifname="$4" addr="${5:-}"
  local outer="v$_veth_n"; _veth_n=$((_veth_n + 1))
  ip -n "$brns" link add "$outer" type veth peer name "$ifname" netns "$ns"
  ip -n "$brns" link set "$outer" master "$br" up
  ip -n "$ns" link set "$ifname" up
  [ -z "$addr" ] || ip -n "$ns" addr add "$addr" dev "$ifname"
}

# veth_pair NS1 ADDR1 NS2 ADDR2: eth0 in each, joined directly.
veth_pair() {
  ip -n "$NS_PREFIX$1" link add eth0 type veth peer name eth0 netns "$NS_PREFIX$3"
  ip -n "$NS_PREFIX$1" link set eth0 up
  ip -n "$NS_PREFIX$3" link set eth0 up
  ip -n "$NS_PREFIX$1" addr add "$2" dev eth0
  ip -n "$NS_PREFIX$3" addr add "$4" dev eth0
}

# nat_rules NS: masquerade what leaves NS by eth0; forward on.
nat_rules() {
  nsx "$1" sysctl -qw net.ipv4.ip_forward=1
  nsx "$1" nft -f - <<'EOF'
table ip nat {
	chain postrouting { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }
}
EOF
}

# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds or time is up.
wait_for() {
  local limit="$1"; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# ns_cleanup: kill everything in our namespaces, delete them.
ns_cleanup() {
  local ns pid i pids
  for ns in "${NS_MADE[@]}"; do
    for i in 1 2 3; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] || break
      for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
      sleep 0.3
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    done
  done
  for ((i = ${#NS_MADE[@]} - 1; i >= 0; i--)); do
    ip netns del "${NS_MADE[$i]}" 2>/dev/null || true
  done
  NS_MADE=()
}

# cloudy_bin: $CLOUDY_BIN, or the release build next to this script.
cloudy_bin() {
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local t="${CARGO_TARGET_DIR:-$root/target}"
  if [ -n "${CLOUDY_BIN:-}" ]; then echo "$CLOUDY_BIN"
  elif [ -x "$t/x86_64-unknown-linux-musl/release/cloudy" ]; then echo "$t/x86_64-unknown-linux-musl/release/cloudy"
  elif [ -x "$t/release/cloudy" ]; then echo "$t/release/cloudy"
  else die "no cloudy binary: run 'make build' or set CLOUDY_BIN"
  fi
}

# cloudy_conf FILE NAME KEYFILE ADDR...: write an agent section (tap mode).
cloudy_conf() {
  local file="$1" name="$2" key="$3"; shift 3
  {
    printf "config agent\n\toption name '%s'\n\toption cloud 'demo'\n" "$name"
    printf "\toption key_file '%s'\n\toption listen_port '6556'\n" "$key"
    printf "\toption interface 'cloudy0'\n\toption mode 'tap'\n\toption log_level 'info'\n"
    local a; for a in "$@"; do printf "\tlist address '%s'\n" "$a"; done
  } >"$file"
}

# cloudy_conf_raw FILE NAME KEYFILE DEVICE: write an agent section (raw
# mode: an AF_PACKET socket on the existing interface DEVICE, no TAP and no
# overlay address).
cloudy_conf_raw() {
  {
    printf "config agent\n\toption name '%s'\n\toption cloud 'demo'\n" "$2"
    printf "\toption key_file '%s'\n\toption listen_port '6556'\n" "$3"
    printf "\toption mode 'raw'\n\toption raw_device '%s'\n\toption log_level 'info'\n" "$4"
  } >"$1"
}

# cloudy_peer FILE NAME PUBKEY [ENDPOINT]: append a peer section.
cloudy_peer() {
  {
    printf "\nconfig peer '%s'\n\toption public_key '%s'\n" "$2" "$3"
    [ -z "${4:-}" ] || printf "\tlist endpoint '%s'\n" "$4"
  } >>"$1"
}
