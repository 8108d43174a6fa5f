# Shared by the cross/ scripts (sourced, not run). Reads a board file,
# installs the toolchain pieces that board needs (idempotently) and sets
# up cargo's environment for it.
#
# Environment:
#   CROSS_TARGET_DIR  cargo target dir of the cross builds
#                     (default: ${CARGO_TARGET_DIR:-target}/cross)
#   CLOUDY_OUT        where binaries and ipks land (default: out/)
#   CROSS_NO_INSTALL  1: never install anything, fail instead

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$MAIN_TARGET_DIR" in /*) ;; *) MAIN_TARGET_DIR="$ROOT/$MAIN_TARGET_DIR" ;; esac
CROSS_TARGET_DIR="${CROSS_TARGET_DIR:-$MAIN_TARGET_DIR/cross}"
CLOUDY_OUT="${CLOUDY_OUT:-$ROOT/out}"
case "$CLOUDY_OUT" in /*) ;; *) CLOUDY_OUT="$ROOT/$CLOUDY_OUT" ;; esac

# Keys every board file must set (see boards/README).
BOARD_KEYS="DESC RUST_TARGET OPENWRT_ARCH QEMU QEMU_CPU FLASH_MIB RAM_MIB SIZE_BUDGET_KIB
TOOLCHAIN BUILD_STD ZIG PROFILE FEATURES UNIT_TESTS"

# Commands installed by pip (cargo-zigbuild, python-zig) live in Python's
# scripts directory, which a non-login shell may not have on PATH.
if command -v python3 >/dev/null 2>&1; then
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
fi

say() { echo "cross: $*" >&2; }
die() { echo "cross: error: $*" >&2; exit 1; }

# Every board, in file-name order.
all_boards() {
  local f
  for f in "$ROOT"/boards/*.conf; do basename "$f" .conf; done
}

# load_board NAME: sets the board's keys (and BOARD) in this shell.
load_board() {
  BOARD="$1"
  local file="$ROOT/boards/$BOARD.conf" k
  [ -f "$file" ] || die "no board '$BOARD' (boards: $(all_boards | tr '\n' ' '))"
  # Only assignments: refuse anything else so a board file stays data.
  if grep -vE '^[[:space:]]*(#.*)?$|^[A-Z_][A-Z0-9_]*=' "$file" | grep -q .; then
    die "$file: only KEY=value lines and comments are allowed"
  fi
  unset DESC RUST_TARGET OPENWRT_ARCH QEMU QEMU_CPU FLASH_MIB RAM_MIB SIZE_BUDGET_KIB \
    TOOLCHAIN BUILD_STD ZIG PROFILE RUSTFLAGS_EXTRA FEATURES UNIT_TESTS UCI_DEFAULTS
  # shellcheck disable=SC1090
  . "$file"
  for k in $BOARD_KEYS; do
    [ "${!k+set}" = set ] || die "$file: $k is not set"
  done
  RUSTFLAGS_EXTRA="${RUSTFLAGS_EXTRA:-}"
  UCI_DEFAULTS="${UCI_DEFAULTS:-}"
  TRIPLE_ENV="$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')"
  if [ "$ZIG" = 1 ] || [ "$BUILD_STD" = 1 ]; then
    BOARD_TARGET_DIR="$CROSS_TARGET_DIR"
  else
    # Plain stable builds share `make build`'s target dir (and artifacts).
    BOARD_TARGET_DIR="$MAIN_TARGET_DIR"
  fi
  BOARD_BIN="$BOARD_TARGET_DIR/$RUST_TARGET/$PROFILE/cloudy"
  BOARD_OUT="$CLOUDY_OUT/$BOARD"
}

can_install() { [ "${CROSS_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; }

# need_apt CMD PACKAGE: install a Debian package when CMD is missing.
need_apt() {
  command -v "$1" >/dev/null 2>&1 && return 0
  can_install || die "$1 missing: apt-get install $2"
  say "installing Debian package $2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$2" >/tmp/cross-apt.log 2>&1 || {
    apt-get update -qq >>/tmp/cross-apt.log 2>&1
    apt-get install -y -qq --no-install-recommends "$2" >>/tmp/cross-apt.log 2>&1
  } || { cat /tmp/cross-apt.log >&2; die "apt-get install $2 failed"; }
}

# need_pip CMD PACKAGE: install a PyPI package when CMD is missing.
need_pip() {
  command -v "$1" >/dev/null 2>&1 && return 0
  can_install || die "$1 missing: pip install $2"
  say "installing $2 from PyPI"
  python3 -m pip install -q --disable-pip-version-check "$2" >/tmp/cross-pip.log 2>&1 \
    || { cat /tmp/cross-pip.log >&2; die "pip install $2 failed"; }
  # pyenv's shims need a rehash to show new commands.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
  hash -r
  command -v "$1" >/dev/null 2>&1 || die "$1 still missing after pip install $2"
}

# The toolchain pieces of the loaded board.
ensure_toolchain() {
  command -v rustup >/dev/null 2>&1 || die "rustup missing"
  if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    can_install || die "toolchain $TOOLCHAIN missing: rustup toolchain install $TOOLCHAIN"
    say "rustup toolchain install $TOOLCHAIN --profile minimal"
    rustup toolchain install "$TOOLCHAIN" --profile minimal >/dev/null 2>&1 \
      || die "rustup toolchain install $TOOLCHAIN failed"
  fi
  if [ "$BUILD_STD" = 1 ]; then
    if ! rustup component list --toolchain "$TOOLCHAIN" --installed 2>/dev/null | grep -qx 'rust-src'; then
      can_install || die "rust-src missing: rustup component add rust-src --toolchain $TOOLCHAIN"
      say "rustup component add rust-src --toolchain $TOOLCHAIN"
      rustup component add rust-src --toolchain "$TOOLCHAIN" >/dev/null 2>&1 \
        || die "rustup component add rust-src failed"
    fi
  else
    if ! rustup target list --toolchain "$TOOLCHAIN" --installed 2>/dev/null | grep -qx "$RUST_TARGET"; then
      can_install || die "Rust target missing: rustup target add $RUST_TARGET --toolchain $TOOLCHAIN"
      say "rustup target add $RUST_TARGET --toolchain $TOOLCHAIN"
      rustup target add "$RUST_TARGET" --toolchain "$TOOLCHAIN" >/dev/null 2>&1 \
        || die "rustup target add $RUST_TARGET failed"
    fi
  fi
  if [ "$ZIG" = 1 ]; then
    need_pip python-zig ziglang
    need_pip cargo-zigbuild cargo-zigbuild
  else
    need_apt musl-gcc musl-tools
  fi
}

# Tools to run and inspect foreign binaries.
ensure_qemu() {
  need_apt file file
  [ -z "$QEMU" ] || need_apt "$QEMU" qemu-user-static
}

# The rustc flags of the loaded board's builds.
board_rustflags() {
  local f=""
  if [ "$ZIG" = 1 ]; then
    # zig supplies crt1.o and libc.a; +crt-static makes a static executable
    # (the default static-pie crashed in thread::spawn on mips).
    f="-C link-self-contained=no -C target-feature=+crt-static"
  fi
  echo "$f $RUSTFLAGS_EXTRA" | sed 's/^ *//; s/ *$//'
}

# board_cargo SUBCOMMAND ARGS...: cargo for the loaded board, with its
# toolchain, flags, target dir, zig and build-std as the board file says.
# SUBCOMMAND is `build` or `test`; for `test` std is built with unwinding.
board_cargo() {
  local sub="$1"; shift
  local flags std=()
  flags="$(board_rustflags)"
  if [ "$BUILD_STD" = 1 ]; then
    if [ "$sub" = test ]; then std=(-Z build-std=std,panic_unwind); else std=(-Z build-std=std,panic_abort); fi
    # std's size-optimised code paths (formatting, sorting, ...): 28 % off
    # the stripped mips binary (1,305,132 -> 943,948 bytes), 18 % off its
    # xz size; the self-test and the unit tests under qemu pass the same.
    std+=(-Z build-std-features=optimize_for_size)
  fi
  local cmd
  if [ "$ZIG" = 1 ]; then
    # cargo-zigbuild's own `test` and `zigbuild` (= build) commands.
    if [ "$sub" = build ]; then cmd=(cargo-zigbuild zigbuild); else cmd=(cargo-zigbuild "$sub"); fi
  else
    cmd=(cargo "$sub")
  fi
  (
    cd "$ROOT"
    export RUSTUP_TOOLCHAIN="$TOOLCHAIN" CARGO_TARGET_DIR="$BOARD_TARGET_DIR"
    # Only set RUSTFLAGS when there are some: an empty RUSTFLAGS still
    # changes nothing, but keeps `make build`'s fingerprints for x86_64.
    if [ -n "$flags" ]; then export RUSTFLAGS="$flags"; else unset RUSTFLAGS; fi
    set -x
    "${cmd[@]}" --target "$RUST_TARGET" "${std[@]}" -p cloudy \
      --no-default-features --features "$FEATURES" "$@"
  )
}

# run_on_board CMD...: runs a binary of the loaded board (under qemu when
# foreign). CLOUDY_UNDER_QEMU tells the program, and its tests, that
# system calls are translated by qemu-user.
run_on_board() {
  if [ -n "$QEMU" ]; then
    CLOUDY_UNDER_QEMU="$QEMU" "$QEMU" -cpu "$QEMU_CPU" "$@"
  else
    "$@"
  fi
}

# The packaged /etc/config/cloudy for the loaded board: the feed's default
# with the board's UCI_DEFAULTS added to `config agent`, on stdout.
board_config() {
  local base="$ROOT/openwrt-feed/net/cloudy/files/cloudy.config"
  [ -f "$base" ] || die "$base missing"
  if [ -z "$UCI_DEFAULTS" ]; then
    cat "$base"
    return
  fi
  # Insert after the `config agent` line, tab-indented as `uci commit`
  # writes. The feed's default leaves these options commented out, so the
  # result never sets one twice.
  awk -v extra="$UCI_DEFAULTS" '
    { print }
    /^config agent/ && !done {
      print "\t# Default for this kind of board:"
      n = split(extra, lines, "\\\\n")
      for (i = 1; i <= n; i++) print "\t" lines[i]
      done = 1
    }
    END { if (!done) exit 3 }
  ' "$base" || die "$base has no config agent section"
}

# human size
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }
