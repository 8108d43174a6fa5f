#!/usr/bin/env bash
# Static musl release build of cloudy for boards (boards/NAME.conf).
#
#   cross/build.sh [BOARD...]      no BOARD: every board
#
# Installs what each board needs (rustup target or nightly rust-src, zig and
# cargo-zigbuild from PyPI, musl-tools), builds with the board's toolchain,
# profile, flags and features, checks the result is a static executable of
# the right machine within the board's size budget, and copies it to
# out/BOARD/cloudy with a BUILDINFO file. Cargo's and zig's caches
# (the target dir, ~/.cache/zig) make a second run a no-op.
. "$(dirname "$0")/lib.sh"

boards=("$@")
[ ${#boards[@]} -gt 0 ] || mapfile -t boards < <(all_boards)

# `file` words for each target's machine, to catch a wrong-target binary.
machine_of() {
  case "$1" in
    x86_64-*) echo "x86-64" ;;
    i586-*|i686-*) echo "Intel 80386" ;;
    aarch64-*) echo "ARM aarch64" ;;
    arm*) echo "ARM, EABI5" ;;
    mips-*) echo "MSB.*MIPS" ;;
    mipsel-*) echo "LSB.*MIPS" ;;
    *) echo "" ;;
  esac
}

need_apt file file
for b in "${boards[@]}"; do
  load_board "$b"
  ensure_toolchain
  t0=$SECONDS
  say "$BOARD: building $RUST_TARGET ($PROFILE, features: $FEATURES)"
  board_cargo build --profile "$PROFILE" --bin cloudy --locked
  [ -f "$BOARD_BIN" ] || die "$BOARD: no binary at $BOARD_BIN"
  desc="$(file -b "$BOARD_BIN")"
  want="$(machine_of "$RUST_TARGET")"
  echo "$desc" | grep -Eq "$want" || die "$BOARD: not a $want binary: $desc"
  echo "$desc" | grep -Eq "statically linked|static-pie linked" || die "$BOARD: not statically linked: $desc"
  size=$(stat -c %s "$BOARD_BIN")
  budget=$((SIZE_BUDGET_KIB * 1024))
  mkdir -p "$BOARD_OUT"
  cp "$BOARD_BIN" "$BOARD_OUT/cloudy.tmp" && mv "$BOARD_OUT/cloudy.tmp" "$BOARD_OUT/cloudy"
  {
    echo "board=$BOARD"
    echo "target=$RUST_TARGET"
    echo "openwrt_arch=$OPENWRT_ARCH"
    echo "profile=$PROFILE"
    echo "features=$FEATURES"
    echo "rustflags=$(board_rustflags)"
    echo "build_std=$BUILD_STD"
    echo "rustc=$(rustup run "$TOOLCHAIN" rustc --version)"
    [ "$ZIG" != 1 ] || echo "zig=$(python-zig version 2>/dev/null) cargo-zigbuild=$(cargo-zigbuild --version 2>/dev/null | awk '{print $2}')"
    echo "bytes=$size"
    echo "file=$desc"
  } > "$BOARD_OUT/BUILDINFO"
  say "$BOARD: $size bytes ($(kib "$size"); budget $SIZE_BUDGET_KIB KiB) in $((SECONDS - t0)) s -> ${BOARD_OUT#"$ROOT"/}/cloudy"
  [ "$size" -le "$budget" ] || die "$BOARD: $size bytes is over the budget of $SIZE_BUDGET_KIB KiB"
done
