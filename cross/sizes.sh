#!/usr/bin/env bash
# Stripped size of each board's release binary (out/BOARD/cloudy, built by
# cross/build.sh), printed as a Markdown table and written into README.md
# between the `sizes:begin` and `sizes:end` markers.
#
#   cross/sizes.sh [--no-readme]
. "$(dirname "$0")/lib.sh"

update=1
[ "${1:-}" != --no-readme ] || update=0
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
{
  echo "| board | Rust target | OpenWrt arch | features | bytes | budget |"
  echo "|---|---|---|---|---:|---:|"
  for b in $(all_boards); do
    load_board "$b"
    bin="$BOARD_OUT/cloudy"
    [ -f "$bin" ] || die "no $bin: run \`make cross-all\` first"
    size=$(stat -c %s "$bin")
    printf '| `%s`: %s | %s | %s | %s | %s | %s KiB |\n' "$BOARD" "$DESC" "$RUST_TARGET" "$OPENWRT_ARCH" \
      "$FEATURES" "$(echo "$size" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta')" "$SIZE_BUDGET_KIB"
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
