#!/usr/bin/env bash
# Builds the agent's cargo feature matrix for x86_64: no features, each
# feature alone, and all features; then runs the unit tests with none, so
# code behind a feature never breaks the build without it.
#
#   cross/features.sh
#
# The features are read from agent/Cargo.toml's [features] table (minus
# `default`), so a new subsystem feature joins the matrix by itself.
. "$(dirname "$0")/lib.sh"

features="$(awk '/^\[features\]/ {f=1; next} /^\[/ {f=0} f && /^[a-z0-9_-]+ *=/ {sub(/ *=.*/, ""); if ($0 != "default") print}' \
  "$ROOT/agent/Cargo.toml")"
[ -n "$features" ] || die "no features in agent/Cargo.toml"
say "features: $(echo $features)"
cd "$ROOT"
export CARGO_TARGET_DIR="$MAIN_TARGET_DIR"
set -x
cargo build -p cloudy --locked --no-default-features
for f in $features; do
  cargo build -p cloudy --locked --no-default-features --features "$f"
done
cargo build -p cloudy --locked --all-features
cargo clippy -p cloudy --locked --all-targets --no-default-features -- -D warnings
cargo test -p cloudy --locked --lib --no-default-features
