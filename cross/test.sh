#!/usr/bin/env bash
# Unit tests of the `cloudy` library on foreign boards, under qemu-user.
#
#   cross/test.sh [BOARD...]   no BOARD: the boards with UNIT_TESTS=1
#
# The test binary is built for the board's target (std with unwinding, so
# a failing test is reported, not an abort) and run by cross/qemu-runner.sh.
# Prints libtest's usual summary per board. Tests of kernel interfaces
# that qemu-user cannot translate skip that part loudly (SKIPPED lines).
. "$(dirname "$0")/lib.sh"

boards=("$@")
if [ ${#boards[@]} -eq 0 ]; then
  for b in $(all_boards); do
    load_board "$b"
    [ "$UNIT_TESTS" != 1 ] || boards+=("$b")
  done
fi

rc=0
for b in "${boards[@]}"; do
  load_board "$b"
  ensure_toolchain
  ensure_qemu
  t0=$SECONDS
  say "$BOARD: unit tests for $RUST_TARGET under ${QEMU:-the host} -cpu ${QEMU_CPU:-host}"
  if [ -n "$QEMU" ]; then
    export "CARGO_TARGET_${TRIPLE_ENV}_RUNNER=$ROOT/cross/qemu-runner.sh"
    export CLOUDY_QEMU="$QEMU" CLOUDY_QEMU_CPU="$QEMU_CPU"
  fi
  # As root, the namespace tests run too (each in a private namespace).
  board_cargo test --lib --locked --no-fail-fast || rc=1
  say "$BOARD: unit tests done in $((SECONDS - t0)) s"
done
exit $rc
