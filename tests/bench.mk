# Benchmarks, fault tests and fuzzing (issue 5), included from the Makefile.
#
#   make bench    ingest: signed ~1 KB deliveries at 16 and 64 connections, 3 s warm-up + 10 s
#                 measured, median of 3 runs, `clientele serve` against a bare axum handler and
#                 a minimal durable receiver (`group_commit`: signature check, raw body only);
#                 reading: 1,000,000 deliveries over 200,000 people built through the real store,
#                 then timeline, search and first-page latencies;
#                 export: those deliveries' 950,000 timeline rows (at most
#                 CLIENTELE_BENCH_EXPORT_ROWS, default 1,000,000), and a tenth of them, to CSV with
#                 `clientele export` against `sqlite3 -csv` writing the same columns from the same
#                 file, with peak memory;
#                 footprint: the desktop app idle on those 200,000 people (under Xvfb), with its
#                 window open, then closed to the tray, against a Tauri window of the same size
#                 and settings with one paragraph in it (`window_floor`);
#                 hand: merging two people and splitting a record out, in a copy of the
#                 reading data set (`bench: merge …`);
#                 relay: `clientele relay serve`'s receiving against bare axum at 64 connections
#                 (as ingest), 100 deliveries/s for 10 s from a provider's POST to the relay until
#                 stored at a desk that pulls, and a fresh desk pulling the reading data set from a
#                 relay (`clientele relay pull`) against `clientele reprocess` of it;
#                 forget: one person forgotten in a copy of the reading data set (the erasure
#                 transaction and the WAL truncation), against a full VACUUM of that copy;
#                 reprocess: `clientele reprocess` (the release binary) of a copy of the reading
#                 data set, against the two costs no derivation can avoid, measured in the same run
#                 on the same file: `sqlite3` writing the tables derivation writes (events,
#                 source_profiles, people, person_terms, identity_keys, delivery_outcomes) into a
#                 scratch database with the schema's tables and indexes, one durable transaction
#                 (floor_seconds), and every stored body parsed once through the real adapters
#                 (parse_seconds); with the derived tables' row counts, to compare two runs;
#                 relay on PostgreSQL (issue 21; a private cluster with fsync on, started for the
#                 run): `relay serve --database` with one and two instances against a minimal
#                 durable PostgreSQL receiver (`pg_minimal`) at 64 connections, every
#                 acknowledged delivery checked in the database afterwards, and a fresh desk
#                 pulling the reading data set from a PostgreSQL relay against a SQLite one.
#                 About 30 minutes on two cores the first time (building the data set takes
#                 a third of it; it is kept in BENCH_DATA and reused; the relay's catch-up
#                 against reprocess takes about 8). Prints `bench: …`
#                 lines and asserts nothing about speed. bench-ingest, bench-read, bench-export,
#                 bench-relay, bench-relay-pg, bench-forget, bench-reprocess and bench-footprint run
#                 one part.
#   make faults   kill -9 ×20 mid-burst, a full disk, 400 hostile requests, 800 slow clients,
#                 secrets in files and logs. Prints `faults: …` lines; fails on any loss or leak.
#                 (`make test` runs the quick variants.)
#   make fuzz     every adapter's verify-and-parse under libFuzzer (cargo-fuzz), from the
#                 committed seed corpus; FUZZ_RUNS executions per adapter.
#
# Shorter runs while developing (any of these, on the command line or in the environment):
#   make bench CLIENTELE_BENCH_WARMUP_S=1 CLIENTELE_BENCH_SECONDS=2 CLIENTELE_BENCH_RUNS=1 \
#              CLIENTELE_BENCH_PEOPLE=4000 CLIENTELE_BENCH_DELIVERIES=20000 \
#              CLIENTELE_BENCH_EXPORT_ROWS=10000 CLIENTELE_BENCH_SETTLE_S=5
#   BENCH_DATA=DIR (or CLIENTELE_BENCH_DATA) keeps the reading data set in DIR and reuses it
#   while the sizes are the same (other sizes replace it).
#   make bench-relay CLIENTELE_BENCH_RELAY=live (any of ingest,live,catch_up) runs some of its
#   parts; CLIENTELE_BENCH_LIVE_RATE (100/s) and CLIENTELE_BENCH_POLL_MS (2) shape the live one.
#   make bench-relay-pg CLIENTELE_BENCH_RELAY_PG=ingest (or catch_up) runs one of its parts;
#   CLIENTELE_BENCH_RELAY_PG_INSTANCES (1,2) and CLIENTELE_PG_MINIMAL_POOL (64) shape the first.
#   make fuzz FUZZ_RUNS=10000

BENCH_BIN = $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release
# The reading data set, shared by read_bench, export_bench, relay_bench, forget_bench,
# reprocess_bench and app_footprint.
BENCH_DATA ?= $(or $(CLIENTELE_BENCH_DATA),$(BENCH_BIN)/bench-data)
# The desktop app needs a display and a session bus (with a Secret Service, as in `make unit`).
BENCH_FOOTPRINT = CLIENTELE_BENCH_DATA="$(BENCH_DATA)" tests/tools/with-secret-service.sh \
  xvfb-run -a -s "-screen 0 1280x800x24" $(BENCH_BIN)/app_footprint
FUZZ_RUNS ?= 1000000
FUZZ_DIR := src-tauri/crates/core/fuzz
FUZZ_TARGETS := tiquo resdiary vagaro plain zupy standard
CARGO_FUZZ_VERSION := 0.13.2

.PHONY: bench bench-build bench-ingest bench-hand bench-read bench-export bench-relay bench-relay-pg bench-forget bench-reprocess bench-footprint faults fuzz cargo-fuzz

# `build` is the desktop app and `clientele` exactly as `make build` makes them (sharing its
# release build); then the benchmark tools, and app_footprint's baseline window (an example of
# the app's crate, built on its own so its dev-dependencies don't change the tools' build).
bench-build: build
	$(CARGO) build --release -p clientele-cli --bin clientele \
	  -p clientele-tests --bin loadgen --bin bare_axum --bin group_commit --bin read_bench --bin export_bench \
	  --bin relay_bench --bin relay_pg_bench --bin pg_minimal --bin hand_bench --bin forget_bench \
	  --bin reprocess_bench \
	  --bin app_footprint
	$(CARGO) build --release -p clientele-app --example window_floor

# The machine the figures come from, then one line per figure.
bench: bench-build
	@echo "bench: machine cores=$$(nproc) cpu=\"$$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\" load=\"$$(cut -d' ' -f1-3 /proc/loadavg)\" date=$$(date -u +%Y-%m-%dT%H:%MZ)"
	$(BENCH_BIN)/loadgen
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/read_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/export_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/relay_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/relay_pg_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/hand_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/forget_bench
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/reprocess_bench
	$(BENCH_FOOTPRINT)

bench-ingest: bench-build
	$(BENCH_BIN)/loadgen

bench-hand: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/hand_bench

bench-read: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/read_bench

bench-export: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/export_bench

bench-relay: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/relay_bench

# Needs PostgreSQL's server (Debian's postgresql package, or CLIENTELE_PG_BIN).
bench-relay-pg: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/relay_pg_bench

bench-forget: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/forget_bench

# Needs the sqlite3 shell (Debian's sqlite3 package, as bench-export).
bench-reprocess: bench-build
	CLIENTELE_BENCH_DATA="$(BENCH_DATA)" $(BENCH_BIN)/reprocess_bench

bench-footprint: bench-build
	$(BENCH_FOOTPRINT)

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
