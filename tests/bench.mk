# Benchmarks, fault tests and fuzzing (issue 5), included from the Makefile.
#
#   make bench    ingest: signed ~1 KB deliveries at 16 and 64 connections, 3 s warm-up + 10 s
#                 measured, median of 3 runs, `clientele serve` against a bare axum handler;
#                 reading: 1,000,000 deliveries over 200,000 people built through the real store,
#                 then timeline, search and first-page latencies. About 15 minutes on two cores.
#                 Prints `bench: …` lines and asserts nothing about speed.
#   make faults   kill -9 ×20 mid-burst, a full disk, 400 hostile requests, 800 slow clients,
#                 secrets in files and logs. Prints `faults: …` lines; fails on any loss or leak.
#                 (`make test` runs the quick variants.)
#   make fuzz     every adapter's verify-and-parse under libFuzzer (cargo-fuzz), from the
#                 committed seed corpus; FUZZ_RUNS executions per adapter.
#
# Shorter runs while developing (any of these, on the command line or in the environment):
#   make bench CLIENTELE_BENCH_WARMUP_S=1 CLIENTELE_BENCH_SECONDS=2 CLIENTELE_BENCH_RUNS=1 \
#              CLIENTELE_BENCH_PEOPLE=4000 CLIENTELE_BENCH_DELIVERIES=20000
#   CLIENTELE_BENCH_DATA=DIR keeps the reading data set in DIR and reuses it next time.
#   make fuzz FUZZ_RUNS=10000

BENCH_BIN = $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release
FUZZ_RUNS ?= 1000000
FUZZ_DIR := src-tauri/crates/core/fuzz
FUZZ_TARGETS := tiquo resdiary vagaro plain zupy standard
CARGO_FUZZ_VERSION := 0.13.2

.PHONY: bench bench-build bench-ingest bench-read faults fuzz cargo-fuzz

bench-build: toolchain
	$(CARGO) build --release -p clientele-server --bin clientele \
	  -p clientele-tests --bin loadgen --bin bare_axum --bin read_bench

# The machine the figures come from, then one line per figure.
bench: bench-build
	@echo "bench: machine cores=$$(nproc) cpu=\"$$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\" load=\"$$(cut -d' ' -f1-3 /proc/loadavg)\" date=$$(date -u +%Y-%m-%dT%H:%MZ)"
	$(BENCH_BIN)/loadgen
	$(BENCH_BIN)/read_bench

bench-ingest: bench-build
	$(BENCH_BIN)/loadgen

bench-read: bench-build
	$(BENCH_BIN)/read_bench

# prlimit (util-linux) sets the full disk's file-size limit and the slow clients' open-file limit.
faults: toolchain
	CLIENTELE_KILL9_RUNS=20 $(CARGO) test -p clientele-tests --test durability -- --nocapture
	CLIENTELE_FAULTS_FULL=1 $(CARGO) test -p clientele-tests --test faults -- --nocapture

# cargo-fuzz builds with libFuzzer's instrumentation, which needs unstable compiler flags: the
# machine's one (stable) toolchain accepts them with RUSTC_BOOTSTRAP=1. Rust code needs no
# AddressSanitizer (no unsafe code), so the sanitizer is off.
cargo-fuzz: toolchain
	@command -v cargo-fuzz >/dev/null || [ -x "$(CARGO_BIN)/cargo-fuzz" ] || \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

fuzz: cargo-fuzz
	@set -e; cd $(FUZZ_DIR); total=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t artifacts/$$t; \
	  out=$$(RUSTC_BOOTSTRAP=1 PATH="$(CARGO_BIN):$$PATH" $(CARGO) fuzz run --sanitizer none $$t \
	    corpus/$$t seeds/$$t -- -runs=$(FUZZ_RUNS) -artifact_prefix=artifacts/$$t/ 2>&1) || { \
	    echo "$$out" | tail -40; echo "fuzz: target=$$t crashes=1 (see $(FUZZ_DIR)/artifacts/$$t)"; exit 1; }; \
	  runs=$$(echo "$$out" | sed -n 's/^Done \([0-9]*\) runs.*/\1/p' | tail -1); \
	  echo "fuzz: target=$$t executions=$${runs:-0} crashes=0"; \
	done
