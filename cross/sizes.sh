#!/usr/bin/env bash
# Stripped size of each board's release binary (out/BOARD/cloudy, built by
# cross/build.sh), and its size xz-compressed as a squashfs image holds it
# (`xz -9e`, the board's branch filter where xz has one), printed as a
# Markdown table and written into README.md between the `sizes:begin` and
# `sizes:end` markers.
#
#   cross/sizes.sh [--no-readme]
. "$(dirname "$0")/lib.sh"

commas() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

update=1
[ "${1:-}" != --no-readme ] || update=0
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
{
  echo "| board | Rust target | OpenWrt arch | features | bytes | xz (flash) | budget |"
  echo "|---|---|---|---|---:|---:|---:|"
  for b in $(all_boards); do
    load_board "$b"
    bin="$BOARD_OUT/cloudy"
    [ -f "$bin" ] || die "no $bin: run \`make cross-all\` first"
    size=$(stat -c %s "$bin")
    # squashfs compresses with xz and the architecture's BCJ filter.
    case "$RUST_TARGET" in
      x86_64-* | i586-* | i686-*) bcj=(--x86) ;;
      arm*) bcj=(--arm) ;;
      aarch64-*) bcj=(--arm64) ;;
      *) bcj=() ;;
    esac
    xz_size=$(xz -9e "${bcj[@]}" --lzma2=preset=9e -c "$bin" 2>/dev/null | wc -c) \
      || xz_size=$(xz -9e -c "$bin" | wc -c)
    printf '| `%s`: %s | %s | %s | %s | %s | %s | %s KiB |\n' "$BOARD" "$DESC" "$RUST_TARGET" "$OPENWRT_ARCH" \
      "$FEATURES" "$(commas "$size")" "$(commas "$xz_size")" "$SIZE_BUDGET_KIB"
  done
} > "$table"
cat "$table"
if [ "$update" = 1 ]; then
  readme="$ROOT/README.md"
  grep -q '<!-- sizes:begin -->' "$readme" && grep -q '<!-- sizes:end -->' "$readme" \
    || die "README.md has no <!-- sizes:begin --> / <!-- sizes:end --> markers"
  awk -v table="$table" '
    /<!-- sizes:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- sizes:end -->/ { skip = 0 }
    !skip { print }
  ' "$readme" > "$readme.tmp" && mv "$readme.tmp" "$readme"
  say "README.md size table updated"
fi
