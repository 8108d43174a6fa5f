#!/usr/bin/env bash
# Erasure-code benchmark: cloudy's codec (agent/src/store/rs.rs) against
# zfec 1.6 from PyPI (Tahoe-LAFS's codec, C behind Python), same work:
#   - 64 MiB of random file data in 128 KiB segments (the store's S), each
#     segment zero-padded to K·B bytes and cut in K blocks of B = ceil(S/K);
#   - encode: the N−K check blocks of every segment;
#   - decode: every segment from its last K shares (3-of-10: check blocks
#     only; 4-of-6: two data and two check blocks);
#   - MB/s = 10^6 bytes of file data (segments × S) per second, the best of
#     3 passes per round, the best of $ROUNDS rounds (default 2): the
#     machine may be shared, and the best run is the least disturbed one.
# cloudy runs the ignored test store::rs::test::codec_throughput of a
# release build (the shipped profile: opt-level "s", LTO), on its fastest
# kernel and on the portable one (what mips/armv7/i586 routers run);
# zfec runs Encoder.encode / Decoder.decode on blocks prepared beforehand,
# timed with time.perf_counter (setup excluded).
# Prints a markdown table; BENCH_CODEC_DOC=FILE replaces (or appends) its
# "## Codec" section of FILE (`make bench`: docs/bench.md, last). Needs
# zfec in $CLOUDY_PYENV (scripts/deps.sh store). Not a test: it never fails
# on a missed target, only on a broken run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=doc_section.sh
. "$here/doc_section.sh"
root="$(cd "$here/.." && pwd)"
ROUNDS="${ROUNDS:-2}"
PY="${CLOUDY_PYENV:-/opt/cloudy-test-venv}/bin/python"
say() { echo "bench-codec: $*" >&2; }
die() { say "$*"; exit 1; }
"$PY" -c 'import zfec' 2>/dev/null || die "no zfec in $PY (scripts/deps.sh store)"
command -v cargo >/dev/null || die "cargo missing"

DIR="$(mktemp -d /tmp/cloudy-bench-codec.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT

say "building the release test binary (LTO: a few minutes)"
(cd "$root" && cargo test --release -p cloudy --lib --no-run) >"$DIR/build.log" 2>&1 \
  || { tail -n 20 "$DIR/build.log"; die "cargo test --no-run failed"; }

for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS: cloudy"
  (cd "$root" && cargo test --release -p cloudy --lib -- --ignored --exact \
    store::rs::test::codec_throughput --nocapture) >"$DIR/cloudy.$round.log" 2>&1 \
    || { tail -n 20 "$DIR/cloudy.$round.log"; die "codec_throughput failed"; }
  sed -n 's/^codec_throughput: //p' "$DIR/cloudy.$round.log" >>"$DIR/results"
  say "round $round of $ROUNDS: zfec"
  "$PY" - >>"$DIR/results" <<'EOF'
import os, time, zfec
S, FILE, RUNS = 131072, 64 << 20, 3
segments = FILE // S
for k, n in ((3, 10), (4, 6)):
    B = -(-S // k)
    data = os.urandom(segments * k * B)
    blocks = [tuple(data[(s * k + i) * B:(s * k + i + 1) * B] for i in range(k))
              for s in range(segments)]
    encoder, checks = zfec.Encoder(k, n), tuple(range(k, n))
    best = float("inf")
    for _ in range(RUNS):
        t = time.perf_counter()
        for segment in blocks:
            encoder.encode(segment, checks)
        best = min(best, time.perf_counter() - t)
    print(f"zfec encode {k}-of-{n} {segments * S / 1e6 / best:.1f} MB/s")
    last = list(range(n - k, n))
    shares = [encoder.encode(segment, tuple(last)) for segment in blocks]
    decoder = zfec.Decoder(k, n)
    best = float("inf")
    for _ in range(RUNS):
        t = time.perf_counter()
        for share_blocks in shares:
            # decode() may reorder the lists it is given: fresh ones.
            decoder.decode(list(share_blocks), list(last))
        best = min(best, time.perf_counter() - t)
    got = decoder.decode(list(shares[-1]), list(last))
    assert [bytes(b) for b in got] == list(blocks[-1]), "zfec decoded wrong"
    print(f"zfec decode {k}-of-{n} {segments * S / 1e6 / best:.1f} MB/s")
EOF
done

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
table="$(ROUNDS="$ROUNDS" "$PY" - "$DIR/results" <<'EOF'
import os, sys
best = {}  # (who, op, k-of-n) -> MB/s; who = kernel name or "zfec"
for line in open(sys.argv[1]):
    who, op, code, rate = line.split()[:4]
    rate = float(rate)
    best[(who, op, code)] = max(best.get((who, op, code), 0.0), rate)
kernels = [w for (w, o, c) in best if w not in ("zfec", "portable")]
fast = kernels[0] if kernels else "portable"
targets = {"encode": 10, "decode": 5}
print(f"| codec | K-of-N | cloudy ({fast}) MB/s | zfec 1.6 MB/s | ratio | target | met "
      f"| cloudy portable MB/s | portable/zfec |")
print("|---|---|---:|---:|---:|---|---|---:|---:|")
for op in ("encode", "decode"):
    for code in ("3-of-10", "4-of-6"):
        ours, zfec = best[(fast, op, code)], best[("zfec", op, code)]
        portable = best[("portable", op, code)]
        ratio, target = ours / zfec, targets[op]
        met = "yes" if ratio >= target else "no"
        print(f"| {op} | {code} | {ours:.0f} | {zfec:.0f} | {ratio:.1f}x | ≥ {target}x zfec "
              f"| {met} | {portable:.0f} | {portable / zfec:.1f}x |")
EOF
)"
echo "$table"

if [ -n "${BENCH_CODEC_DOC:-}" ]; then
  heading="## Codec: cloudy's Reed–Solomon vs zfec"
  {
    echo "Generated by scripts/bench_codec.sh (the last step of \`make bench\`) on $(date -u +%Y-%m-%d); do not edit by hand."
    echo
    echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, Linux $(uname -r); $(rustc --version | cut -d' ' -f1-2)"
    echo "- command: \`BENCH_CODEC_DOC=docs/bench.md bash scripts/bench_codec.sh\` (ROUNDS=$ROUNDS)"
    echo "- work: 64 MiB of random data in 128 KiB segments, each zero-padded to K·B bytes"
    echo "  in K blocks of B = ceil(131072/K); encode = the N−K check blocks of every"
    echo "  segment; decode = every segment from its last K shares (3-of-10: check"
    echo "  blocks only; 4-of-6: two data, two check blocks). MB/s = 10^6 bytes of file"
    echo "  data per second, best of 3 passes per round and of $ROUNDS rounds (a shared,"
    echo "  noisy machine: the best run is the least disturbed)."
    echo "- cloudy: \`store::rs::test::codec_throughput\` in a release build (opt-level"
    echo "  \"s\", LTO: the shipped profile), outputs into reused segment buffers;"
    echo "  \"portable\" is the table kernel mips, armv7 and i586 run."
    echo "- zfec: zfec 1.6.0.0 from PyPI, \`Encoder.encode(blocks, check ids)\` and"
    echo "  \`Decoder.decode(blocks, ids)\` per segment, timed with \`time.perf_counter\`,"
    echo "  blocks prepared beforehand."
    echo
    echo "$table"
  } | doc_section "$BENCH_CODEC_DOC" "$heading"
  say "section \"$heading\" written to $BENCH_CODEC_DOC"
fi
