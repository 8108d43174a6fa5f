#!/usr/bin/env bash
# An installable OpenWrt .ipk of cloudy for one board, without the SDK.
#
#   cross/ipk.sh BOARD [BINARY]
#
# BINARY defaults to out/BOARD/cloudy (built by cross/build.sh when
# missing). Writes out/ipk/cloudy_VERSION-RELEASE_ARCH.ipk and prints its
# path. The package is what the SDK's ipkg-build makes of the feed's
# openwrt-feed/net/cloudy (same files, modes, control fields and
# maintainer-script wrappers), byte for byte reproducible:
#
#   outer: gzip'd tar of ./debian-binary ./data.tar.gz ./control.tar.gz
#          (ipkg-build's order; opkg rejects Debian's `ar` format)
#   inner: gzip'd tars, paths ./..., sorted, owner 0:0 numeric, mtime =
#          SOURCE_DATE_EPOCH (default: the last commit's time), gzip -n
#
# Depends lists `libc` although the binary is static: the SDK adds it to
# every package, so this ipk and a feed-built (dynamic) one are
# interchangeable for opkg, and libc is on every OpenWrt image anyway.
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 BOARD [BINARY]" >&2; exit 2; }
load_board "$1"
bin="${2:-$BOARD_OUT/cloudy}"
if [ ! -x "$bin" ]; then
  [ $# -eq 1 ] || die "$bin is not an executable"
  bash "$ROOT/cross/build.sh" "$BOARD"
fi
need_apt gzip gzip

FEED="$ROOT/openwrt-feed/net/cloudy"
mk="$FEED/Makefile"
# A `KEY:=value` of the feed Makefile (the first one).
mkvar() { sed -n "s/^[[:space:]]*$1:=//p" "$mk" | head -n 1; }
version="$(awk -F'"' '/^version *=/ {print $2; exit}' "$ROOT/Cargo.toml")"
pkg_version="$(mkvar PKG_VERSION)"
release="$(mkvar PKG_RELEASE)"
[ "$pkg_version" = "$version" ] || die "$mk: PKG_VERSION $pkg_version is not the workspace version $version"
[ -n "$release" ] || die "$mk: no PKG_RELEASE"
full_version="$version-$release"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}"
[ -n "$epoch" ] || epoch=0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
data="$work/data"; control="$work/control"; outer="$work/outer"
mkdir -p "$data/usr/sbin" "$data/etc/init.d" "$data/etc/config" "$data/lib/upgrade/keep.d" \
  "$control" "$outer"

# Package/cloudy/install of the feed Makefile.
install -m 0755 "$bin" "$data/usr/sbin/cloudy"
install -m 0755 "$FEED/files/cloudy.init" "$data/etc/init.d/cloudy"
board_config > "$data/etc/config/cloudy"
chmod 0600 "$data/etc/config/cloudy"

# Package/cloudy/conffiles: the SDK keeps in `conffiles` those shipped in
# the package, and lists the others (the key, created on the box) in
# /lib/upgrade/keep.d/PKG so sysupgrade keeps them.
conffiles="$(sed -n '/^define Package\/cloudy\/conffiles/,/^endef/p' "$mk" | sed '1d;$d')"
[ -n "$conffiles" ] || die "$mk: no conffiles"
: > "$control/conffiles"
: > "$data/lib/upgrade/keep.d/cloudy"
for f in $conffiles; do
  if [ -f "$data$f" ]; then echo "$f" >> "$control/conffiles"; else echo "$f" >> "$data/lib/upgrade/keep.d/cloudy"; fi
done
LC_ALL=C sort -o "$control/conffiles" "$control/conffiles"
chmod 0644 "$control/conffiles" "$data/lib/upgrade/keep.d/cloudy"
[ -s "$data/lib/upgrade/keep.d/cloudy" ] || rm -r "$data/lib"
find "$data" -type d -exec chmod 0755 {} +
chmod 0755 "$control"

tarflags=(--format=gnu --numeric-owner --owner=0 --group=0 --mtime="@$epoch")
(cd "$data" && tar "${tarflags[@]}" --sort=name -cf - .) | gzip -9n > "$outer/data.tar.gz"
installed_size="$(gzip -dc "$outer/data.tar.gz" | wc -c)"

# Fields in the SDK's order (include/package-pack.mk).
section="$(sed -n 's/^[[:space:]]*SECTION:=//p' "$mk" | head -n 1)"
deps="$(sed -n 's/^[[:space:]]*DEPENDS:=//p' "$mk" | head -n 1 | tr ' ' '\n' | grep '^+' | sed 's/^+//' | paste -sd, - | sed 's/,/, /g')"
description="$(sed -n '/^define Package\/cloudy\/description/,/^endef/p' "$mk" | sed '1d;$d' | sed -e 's,^[[:space:]]*, ,')"
{
  echo "Package: cloudy"
  echo "Version: $full_version"
  echo "Depends: libc${deps:+, $deps}"
  echo "Source: openwrt-feed/net/cloudy"
  echo "SourceName: cloudy"
  echo "License: $(mkvar PKG_LICENSE)"
  echo "LicenseFiles: $(mkvar PKG_LICENSE_FILES)"
  echo "Section: $section"
  echo "SourceDateEpoch: $epoch"
  echo "Maintainer: $(mkvar PKG_MAINTAINER)"
  echo "Architecture: $OPENWRT_ARCH"
  echo "Installed-Size: $installed_size"
  printf 'Description:'; echo "$description"
} > "$control/control"
chmod 0644 "$control/control"

# The SDK's maintainer-script wrappers: default_postinst enables the init
# script (and starts it on a running box; in an image build, where
# IPKG_INSTROOT is set, it only enables); default_prerm stops and
# disables it. Outside OpenWrt (no functions.sh) they do nothing.
cat > "$control/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
cat > "$control/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
chmod 0755 "$control/postinst" "$control/prerm"
(cd "$control" && tar "${tarflags[@]}" --sort=name -cf - .) | gzip -9n > "$outer/control.tar.gz"

echo "2.0" > "$outer/debian-binary"
chmod 0644 "$outer"/*
mkdir -p "$CLOUDY_OUT/ipk"
ipk="$CLOUDY_OUT/ipk/cloudy_${full_version}_${OPENWRT_ARCH}.ipk"
(cd "$outer" && tar "${tarflags[@]}" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) \
  | gzip -9n > "$ipk.tmp"
mv "$ipk.tmp" "$ipk"
say "$BOARD: $(stat -c %s "$ipk") bytes -> ${ipk#"$ROOT"/}"
echo "$ipk"
