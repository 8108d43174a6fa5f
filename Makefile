# cloudy: build, test, demo, bench, fuzz.
#
#   make build      static release binary ($(BIN))
#   make test       everything CI runs; ends with "tests: N passed, N failed, N skipped"
#   make demo       5 boxes in network namespaces (root)
#   make bench      cloudy vs tinc vs plain veth, and cloudy's mDNS vs Avahi
#                   (root); writes docs/bench.md
#   make fuzz       every fuzz target for $(FUZZ_TIME) s (fuzz-long: 600 s)
#
# Boards (boards/*.conf; docs/boards.md):
#   make cross BOARD=ath79   static musl release build for one board -> out/ath79/cloudy
#   make cross-all           every board
#   make test-cross          every board built and run under qemu (--version,
#                            check-config, self-test); lib unit tests under qemu
#                            on the boards with UNIT_TESTS=1 (ath79)
#   make sizes               stripped size per board; updates README.md's table
#   make ipk BOARD=ath79     installable OpenWrt package -> out/ipk/*.ipk
#   make features            the cargo feature matrix for x86_64
#
# Fresh Debian 12, as root: scripts/deps.sh installs what each target needs.

SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
MUSL := x86_64-unknown-linux-musl
# Always the static musl build: `make build` installs the Rust target and
# musl-gcc first (scripts/deps.sh build), or stops and says what to install.
BIN ?= $(TARGET_DIR)/$(MUSL)/release/cloudy

# Fuzzing: nightly if installed, else stable with RUSTC_BOOTSTRAP (same flags).
FUZZ_TIME ?= 20
FUZZ_CARGO := $(shell $(CARGO) +nightly --version >/dev/null 2>&1 && echo "$(CARGO) +nightly" || echo "RUSTC_BOOTSTRAP=1 $(CARGO)")
FUZZ_TARGETS = $(shell test -f fuzz/Cargo.toml && awk '/^\[\[bin\]\]/{b=1;next} b&&/^name *=/{gsub(/[" ]/,"",$$0);sub(/^name=/,"",$$0);print;b=0}' fuzz/Cargo.toml)

TEST_STEPS := deps fmt clippy unit build features cross ns fuzz

# Cross builds, packages and the feature matrix live in cross/ (shell);
# they read boards/*.conf and write under out/ (gitignored).
CROSS_ENV := CARGO_TARGET_DIR=$(abspath $(TARGET_DIR))
BOARDS = $(basename $(notdir $(wildcard boards/*.conf)))

.PHONY: build test demo bench fuzz fuzz-long clean deps $(addprefix test-,$(TEST_STEPS)) \
	cross cross-all sizes ipk features check-board test-cross vendor-check

build:
	@bash scripts/deps.sh build
	$(CARGO) build --release --target $(MUSL) -p cloudy --bin cloudy
	@echo "binary: $(BIN) ($$(stat -c %s $(BIN)) bytes)"

# Every step runs even after a failure. Each step's output goes to
# $(TARGET_DIR)/make-test-STEP.log and the tests' skips to
# make-test-STEP.skips (CLOUDY_SKIP_LOG); scripts/test_summary.py then
# counts each distinct test once (the feature matrix and the qemu boards
# run the unit tests again), lists every skip with its reason, and ends
# with "tests: N passed, N failed, N skipped". Non-zero exit on any failure.
test:
	@mkdir -p $(TARGET_DIR); d=$(abspath $(TARGET_DIR)); : >$$d/make-test-steps.tsv; \
	for step in $(TEST_STEPS); do \
	  t0=$$SECONDS; log=$$d/make-test-$$step.log; skips=$$d/make-test-$$step.skips; : >$$skips; \
	  echo "=== make test: $$step ==="; \
	  CLOUDY_SKIP_LOG=$$skips $(MAKE) --no-print-directory test-$$step 2>&1 | tee $$log; \
	  rc=$${PIPESTATUS[0]}; \
	  echo "=== make test: $$step: $$([ $$rc -eq 0 ] && echo ok || echo FAILED) ($$((SECONDS - t0)) s) ==="; \
	  echo "$$step $$rc $$((SECONDS - t0))" >>$$d/make-test-steps.tsv; \
	done; \
	python3 scripts/test_summary.py $$d

test-deps:
	@bash scripts/deps.sh test fuzz mdns store cross

test-fmt:
	$(CARGO) fmt --all --check

test-clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-unit:
	$(CARGO) test -p cloudy --no-fail-fast

test-build: build

test-ns:
	CLOUDY_BIN=$(abspath $(BIN)) $(CARGO) test -p cloudy-tests --no-fail-fast -- --test-threads=1

test-features: features

# Every board: release build, its run under qemu, the lib's unit tests on
# the big-endian (ath79, mips) and 32-bit little-endian (ramips, mipsel)
# boards, and `cargo vendor` still working (offline OpenWrt builds).
test-cross:
	@bash scripts/deps.sh cross
	$(CROSS_ENV) bash cross/build.sh
	$(CROSS_ENV) bash cross/check.sh
	$(CROSS_ENV) bash cross/test.sh
	@$(MAKE) --no-print-directory vendor-check

cross:
	@test -n "$(BOARD)" || { echo "usage: make cross BOARD=name (boards: $(BOARDS))"; exit 2; }
	@bash scripts/deps.sh cross
	$(CROSS_ENV) bash cross/build.sh $(BOARD)

cross-all:
	@bash scripts/deps.sh cross
	$(CROSS_ENV) bash cross/build.sh

# Runs BOARD's binary under qemu: --version, check-config, self-test.
check-board:
	@test -n "$(BOARD)" || { echo "usage: make check-board BOARD=name (boards: $(BOARDS))"; exit 2; }
	$(CROSS_ENV) bash cross/check.sh $(BOARD)

sizes: cross-all
	$(CROSS_ENV) bash cross/sizes.sh

ipk:
	@test -n "$(BOARD)" || { echo "usage: make ipk BOARD=name (boards: $(BOARDS))"; exit 2; }
	@bash scripts/deps.sh cross
	$(CROSS_ENV) bash cross/ipk.sh $(BOARD)

features:
	$(CROSS_ENV) bash cross/features.sh

# OpenWrt builds Rust offline from vendored crates: every dependency must
# come from a registry (no git), and `cargo vendor` must succeed. Vendors
# into a temporary directory outside the repository, then removes it.
vendor-check:
	@! grep -q 'source = "git+' Cargo.lock || { echo "vendor-check: git dependencies in Cargo.lock"; exit 1; }
	@d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	  $(CARGO) vendor --locked --versioned-dirs "$$d/vendor" >"$$d/log" 2>&1 \
	    || { cat "$$d/log"; echo "vendor-check: cargo vendor failed"; exit 1; }; \
	  echo "vendor-check: cargo vendor ok ($$(ls "$$d/vendor" | wc -l) crates, none from git)"

test-fuzz: fuzz

deps:
	@bash scripts/deps.sh test demo bench fuzz cross

demo:
	@bash scripts/deps.sh demo
	@$(MAKE) --no-print-directory build
	CLOUDY_BIN=$(abspath $(BIN)) bash scripts/demo.sh

# The overlay table (bench.sh rewrites docs/bench.md), then the mDNS one
# (bench_mdns.sh replaces only its own section of it).
bench:
	@bash scripts/deps.sh bench mdns store
	@$(MAKE) --no-print-directory build
	CLOUDY_BIN=$(abspath $(BIN)) bash scripts/bench.sh
	CLOUDY_BIN=$(abspath $(BIN)) BENCH_MDNS_DOC=docs/bench.md bash scripts/bench_mdns.sh
	BENCH_CODEC_DOC=docs/bench.md bash scripts/bench_codec.sh
	CLOUDY_BIN=$(abspath $(BIN)) BENCH_STORE_DOC=docs/bench.md bash scripts/bench_store.sh

# Each target starts from its committed seeds (fuzz/corpus/T) and writes
# what it finds to fuzz/corpus/T/generated (gitignored, never committed).
fuzz:
	@bash scripts/deps.sh fuzz
	@mkdir -p $(TARGET_DIR); if [ -z "$(strip $(FUZZ_TARGETS))" ]; then echo "fuzz: no fuzz/Cargo.toml targets; nothing to do"; exit 0; fi; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t/generated; \
	  echo "fuzz: $$t for $(FUZZ_TIME) s"; \
	  log=$(abspath $(TARGET_DIR))/fuzz-$$t.log; \
	  if $(FUZZ_CARGO) fuzz run $$t fuzz/corpus/$$t/generated fuzz/corpus/$$t -- \
	       -max_total_time=$(FUZZ_TIME) -print_final_stats=0 >$$log 2>&1; then \
	    grep -aE '^Done [0-9]+ runs' $$log || true; \
	  else \
	    grep -aE -A4 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' $$log | head -n 24; grep -aE '^error' $$log | head -n 20; \
	    echo "fuzz: $$t FAILED (crash input in fuzz/artifacts/$$t, full log $$log)"; exit 1; \
	  fi; \
	done

fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=600

clean:
	$(CARGO) clean
	rm -rf out
	rm -rf fuzz/target fuzz/corpus/*/generated fuzz/artifacts
