#!/bin/sh
# Cargo runner (CARGO_TARGET_<TRIPLE>_RUNNER) for foreign test binaries:
# runs "$@" under $CLOUDY_QEMU -cpu $CLOUDY_QEMU_CPU, and tells the tests
# they run under qemu-user (CLOUDY_UNDER_QEMU, see runtime::netif tests).
: "${CLOUDY_QEMU:?set CLOUDY_QEMU}"
CLOUDY_UNDER_QEMU="$CLOUDY_QEMU"
export CLOUDY_UNDER_QEMU
exec "$CLOUDY_QEMU" -cpu "${CLOUDY_QEMU_CPU:-max}" "$@"
