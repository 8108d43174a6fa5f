#!/usr/bin/env bash
# How fast each transport AEAD seals 1400-byte frames on a board, under
# its qemu-user (or natively): ring (feature fast-crypto) against the
# RustCrypto ChaCha20-Poly1305. A measurement, not a test: the numbers are
# emulated, so only the ratio between the two on one board means
# something (docs/boards.md records it).
#
#   cross/aead_speed.sh [BOARD...]    default: ath79 ramips x86_64
. "$(dirname "$0")/lib.sh"

boards=("$@")
[ ${#boards[@]} -gt 0 ] || boards=(ath79 ramips x86_64)
for b in "${boards[@]}"; do
  load_board "$b"
  # Its own target dir: an optimised test build (std with unwinding) must
  # not meet the release binary's std (panic=abort) in one directory.
  BOARD_TARGET_DIR="$CROSS_TARGET_DIR/aead-speed"
  # Tests unwind: build everything so, or build-std makes two cores.
  export CARGO_PROFILE_RELEASE_PANIC=unwind
  ensure_toolchain
  ensure_qemu
  if [ -n "$QEMU" ]; then
    export "CARGO_TARGET_${TRIPLE_ENV}_RUNNER=$ROOT/cross/qemu-runner.sh"
    export CLOUDY_QEMU="$QEMU" CLOUDY_QEMU_CPU="$QEMU_CPU"
  fi
  say "$BOARD: AEAD speed (features: $FEATURES)"
  log="$BOARD_TARGET_DIR/$BOARD.log"
  mkdir -p "$BOARD_TARGET_DIR"
  board_cargo test --lib --release --locked -- --ignored aead_throughput --nocapture >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "$BOARD: the measurement failed (full log: $log)"; }
  sed -n "s/^aead_throughput: /$BOARD: /p" "$log"
done
