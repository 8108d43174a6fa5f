#!/bin/sh
# The cargo features of cloudy for one OpenWrt package architecture, as a
# comma-separated list for RUST_PKG_FEATURES. The boards are the one
# place features are chosen (boards/*.conf: OPENWRT_ARCH and FEATURES), so
# a package built with the SDK has the same subsystems as `make ipk`.
#
#   features.sh BOARDS_DIR ARCH_PACKAGES      e.g. ../../../boards mips_24kc
#
# An architecture without a board gets "overlay,discovery": the RustCrypto
# AEAD builds everywhere, ring (fast-crypto) does not.
set -eu
dir="$1" arch="$2"
for conf in "$dir"/*.conf; do
  [ -f "$conf" ] || continue
  if grep -qx "OPENWRT_ARCH=$arch" "$conf"; then
    sed -n 's/^FEATURES="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$conf" | head -n 1 | tr ' ' ','
    exit 0
  fi
done
echo "overlay,discovery"
