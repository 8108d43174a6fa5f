#!/usr/bin/env bash
# Install what `make test|demo|bench|fuzz` need on a fresh Debian 12, as root.
#
#   scripts/deps.sh test|demo|bench|fuzz|mdns|cross [more sets...]
#
# `store`: zfec from PyPI in the same venv (our shares decoded by Tahoe's
# codec).
#
# `mdns` (interop tests and benchmark against real peers): avahi-daemon,
# avahi-utils, dbus, dig, and python-zeroconf from PyPI in a venv at
# $CLOUDY_PYENV (default /opt/cloudy-test-venv; the system python is left
# alone). Our tests start avahi-daemon by hand inside namespaces; the
# system's own avahi service is never started (policy-rc.d during the
# install) and is disabled afterwards.
#
# `cross` (boards, qemu, ipk): qemu-user-static, file and binutils from
# Debian; zig (PyPI `ziglang`) and cargo-zigbuild from PyPI. The Rust side
# of each board (rustup targets, nightly rust-src) is installed by
# cross/lib.sh when a board needs it.
#
# Idempotent and quiet: installs only what is missing, runs `apt-get update`
# at most once (and only when a package must be installed). When not root it
# changes nothing and prints what to install instead.
set -euo pipefail

usage() { echo "usage: $0 build|test|demo|bench|fuzz|mdns|store|cross ..." >&2; exit 2; }
[ $# -ge 1 ] || usage

# Debian package per command we need; the command is what we check for.
declare -A PKG_OF=(
  [ip]=iproute2 [ping]=iputils-ping [nft]=nftables [pkill]=procps
  [killall]=psmisc [python3]=python3 [iperf3]=iperf3 [tincd]=tinc
  [strip]=binutils [cc]=gcc [make]=make [musl-gcc]=musl-tools
  [qemu-mips-static]=qemu-user-static [file]=file [objdump]=binutils
  [avahi-daemon]=avahi-daemon [avahi-browse]=avahi-utils [dbus-daemon]=dbus
  [dig]=dnsutils [unshare]=util-linux [xz]=xz-utils
)
# Python peers from PyPI, in one venv: python-zeroconf (mdns set), zfec
# (store set). Pinned versions; module name => requirement.
PYENV="${CLOUDY_PYENV:-/opt/cloudy-test-venv}"
declare -A PY_REQ_OF=([zeroconf]="zeroconf==0.154.0" [zfec]="zfec==1.6.0.0")
PY_MODULES=()
want_pyenv=no
# PyPI package per command (the `cross` set), installed with pip.
declare -A PIP_OF=([python-zig]=ziglang [cargo-zigbuild]=cargo-zigbuild)
PIP_TOOLS=()
CMDS=()
RUST_TARGETS=()
CARGO_TOOLS=()
for set in "$@"; do
  case "$set" in
    build) CMDS+=(make cc musl-gcc); RUST_TARGETS+=(x86_64-unknown-linux-musl) ;;
    test) CMDS+=(ip ping nft pkill iperf3 python3 make cc musl-gcc); RUST_TARGETS+=(x86_64-unknown-linux-musl) ;;
    demo) CMDS+=(ip ping nft pkill make cc musl-gcc); RUST_TARGETS+=(x86_64-unknown-linux-musl) ;;
    bench) CMDS+=(ip ping pkill iperf3 tincd strip make cc musl-gcc); RUST_TARGETS+=(x86_64-unknown-linux-musl) ;;
    fuzz) CMDS+=(cc make); CARGO_TOOLS+=(cargo-fuzz) ;;
    cross) CMDS+=(qemu-mips-static file objdump xz musl-gcc make); PIP_TOOLS+=(python-zig cargo-zigbuild)
           RUST_TARGETS+=(x86_64-unknown-linux-musl) ;;
    mdns) CMDS+=(ip avahi-daemon avahi-browse dbus-daemon dig unshare); want_pyenv=yes; PY_MODULES+=(zeroconf) ;;
    store) CMDS+=(python3); want_pyenv=yes; PY_MODULES+=(zfec) ;;
    *) usage ;;
  esac
done

missing_pkgs=()
for c in "${CMDS[@]}"; do
  # nft and friends live in /usr/sbin, not always in a non-root PATH.
  if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$c" ] && [ ! -x "/sbin/$c" ]; then
    p="${PKG_OF[$c]}"
    case " ${missing_pkgs[*]:-} " in *" $p "*) ;; *) missing_pkgs+=("$p") ;; esac
  fi
done

# The venv needs Debian's python3-venv (ensurepip) for the system python.
need_pyenv=no
missing_py=()
if [ "$want_pyenv" = yes ]; then
  for m in "${PY_MODULES[@]}"; do
    "$PYENV/bin/python" -c "import $m" >/dev/null 2>&1 || missing_py+=("${PY_REQ_OF[$m]}")
  done
fi
if [ ${#missing_py[@]} -gt 0 ]; then
  need_pyenv=yes
  if [ ! -x "$PYENV/bin/pip" ] && ! /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1; then
    for p in python3 python3-venv; do
      case " ${missing_pkgs[*]:-} " in *" $p "*) ;; *) missing_pkgs+=("$p") ;; esac
    done
  fi
fi

missing_targets=()
if command -v rustup >/dev/null 2>&1; then
  installed_targets="$(rustup target list --installed 2>/dev/null || true)"
  for t in "${RUST_TARGETS[@]:-}"; do
    [ -n "$t" ] || continue
    grep -qx "$t" <<<"$installed_targets" || missing_targets+=("$t")
  done
elif [ ${#RUST_TARGETS[@]} -gt 0 ]; then
  # A Rust without rustup: its standard library for musl must be there already.
  sysroot="$(rustc --print sysroot 2>/dev/null || true)"
  for t in "${RUST_TARGETS[@]}"; do
    [ -d "$sysroot/lib/rustlib/$t" ] || {
      echo "deps.sh: the Rust target $t is missing and there is no rustup to add it;" >&2
      echo "  install Rust with rustup, then: rustup target add $t" >&2
      exit 1
    }
  done
fi

missing_tools=()
for t in "${CARGO_TOOLS[@]:-}"; do
  [ -n "$t" ] || continue
  # cargo-fuzz installs the `cargo-fuzz` binary.
  command -v "$t" >/dev/null 2>&1 || missing_tools+=("$t")
done

missing_pip=()
# pip's scripts directory may be off PATH in a non-login shell.
if command -v python3 >/dev/null 2>&1; then
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
fi
for t in "${PIP_TOOLS[@]:-}"; do
  [ -n "$t" ] || continue
  command -v "$t" >/dev/null 2>&1 || missing_pip+=("${PIP_OF[$t]}")
done

if [ ${#missing_pkgs[@]} -eq 0 ] && [ ${#missing_targets[@]} -eq 0 ] && [ ${#missing_tools[@]} -eq 0 ] && [ ${#missing_pip[@]} -eq 0 ] \
  && [ "$need_pyenv" = no ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: not root; please install as root:" >&2
  [ ${#missing_pkgs[@]} -eq 0 ] || echo "  apt-get install -y ${missing_pkgs[*]}" >&2
  for t in "${missing_targets[@]:-}"; do [ -z "$t" ] || echo "  rustup target add $t" >&2; done
  for t in "${missing_tools[@]:-}"; do [ -z "$t" ] || echo "  cargo install $t --locked" >&2; done
  [ ${#missing_pip[@]} -eq 0 ] || echo "  python3 -m pip install ${missing_pip[*]}" >&2
  [ "$need_pyenv" = no ] || echo "  /usr/bin/python3 -m venv $PYENV && $PYENV/bin/pip install ${missing_py[*]}" >&2
  exit 1
fi

if [ ${#missing_pkgs[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No package may start its service during the install (avahi-daemon
  # would): a policy-rc.d that denies, unless the machine already has one.
  made_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=yes
  fi
  trap '[ "$made_policy" = no ] || rm -f /usr/sbin/policy-rc.d' EXIT
  # Update the lists only if apt cannot find a candidate (fresh image).
  if ! apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/tmp/deps-apt.log 2>&1; then
    apt-get update -qq >/tmp/deps-apt.log 2>&1 || { cat /tmp/deps-apt.log >&2; exit 1; }
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/tmp/deps-apt.log 2>&1 \
      || { cat /tmp/deps-apt.log >&2; echo "deps.sh: apt-get install ${missing_pkgs[*]} failed" >&2; exit 1; }
  fi
  # Debian's tinc package enables a service; we start tincd by hand only.
  if [[ " ${missing_pkgs[*]} " == *" tinc "* ]]; then
    systemctl disable --now tinc >/dev/null 2>&1 || true
  fi
  # The system avahi must not run beside the test daemons: keep it off
  # (under systemd, enabling it also sets up socket and D-Bus activation;
  # disabling removes both). Without systemd, policy-rc.d kept it stopped.
  if [[ " ${missing_pkgs[*]} " == *" avahi-daemon "* ]]; then
    systemctl disable --now avahi-daemon.socket avahi-daemon.service >/dev/null 2>&1 || true
  fi
  [ "$made_policy" = no ] || rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

if [ "$need_pyenv" = yes ]; then
  echo "deps.sh: ${missing_py[*]} into the venv $PYENV"
  if [ ! -x "$PYENV/bin/pip" ]; then
    rm -rf "$PYENV"
    /usr/bin/python3 -m venv "$PYENV" >/tmp/deps-pip.log 2>&1 \
      || { cat /tmp/deps-pip.log >&2; echo "deps.sh: python3 -m venv $PYENV failed" >&2; exit 1; }
  fi
  "$PYENV/bin/pip" install -q --disable-pip-version-check "${missing_py[@]}" >>/tmp/deps-pip.log 2>&1 \
    || { cat /tmp/deps-pip.log >&2; echo "deps.sh: pip install ${missing_py[*]} failed" >&2; exit 1; }
fi

for t in "${missing_targets[@]:-}"; do
  [ -n "$t" ] || continue
  echo "deps.sh: rustup target add $t"
  rustup target add "$t" >/tmp/deps-rustup.log 2>&1 \
    || { cat /tmp/deps-rustup.log >&2; echo "deps.sh: rustup target add $t failed" >&2; exit 1; }
done

for t in "${missing_tools[@]:-}"; do
  [ -n "$t" ] || continue
  echo "deps.sh: cargo install $t --locked (takes a few minutes)"
  cargo install "$t" --locked --quiet || { echo "deps.sh: cargo install $t failed" >&2; exit 1; }
done

if [ ${#missing_pip[@]} -gt 0 ]; then
  echo "deps.sh: pip install ${missing_pip[*]}"
  python3 -m pip install -q --disable-pip-version-check "${missing_pip[@]}" >/tmp/deps-pip-cross.log 2>&1 \
    || { cat /tmp/deps-pip-cross.log >&2; echo "deps.sh: pip install ${missing_pip[*]} failed" >&2; exit 1; }
  # pyenv's shims need a rehash to show new commands.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
fi
