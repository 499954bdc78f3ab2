# infra/bench.mk - `make bench`: the benchmarks of issue 9 (never part of `make test`).
#
# Builds the release binaries that are measured (amictl + the five functions, host
# architecture) and the bench orchestrator (a dev build: it only seeds, starts and times
# the release binaries), then runs it. Each benchmark starts its own emulator on
# 127.0.0.1. Results: bench/results/latest.json and latest.md; the table is printed.
# The arm64 zipped sizes come from .aws-sam/build (run `make package` first; without it
# the size rows say "not built").
#   make bench                     all five benchmarks (~15 min on 2 cores, plus the fan-out)
#   make bench BENCH_ONLY=burst    some of: cleanup burst functions inventory fanout
#                                  (the other rows of bench/results are kept from the last run)
#   make bench BENCH_ONLY=fanout BENCH_FANOUT_ACCOUNTS=10
#                                  the fan-out's size: BENCH_FANOUT_ACCOUNTS (50),
#                                  BENCH_FANOUT_IMAGES (200 per account and region),
#                                  BENCH_FANOUT_CONCURRENCY (10)

CARGO       ?= cargo
BENCH_ONLY  ?=
BENCH_FANOUT_ACCOUNTS    ?=
BENCH_FANOUT_IMAGES      ?=
BENCH_FANOUT_CONCURRENCY ?=

.PHONY: bench

bench: emulator-venv
	$(CARGO) build --release --locked -p amictl -p create-image -p replicate -p share -p cleanup -p publish
	$(CARGO) build --locked -p bench
	BENCH_BIN_DIR=$(CURDIR)/target/release BENCH_FANOUT_ACCOUNTS=$(BENCH_FANOUT_ACCOUNTS) \
	BENCH_FANOUT_IMAGES=$(BENCH_FANOUT_IMAGES) BENCH_FANOUT_CONCURRENCY=$(BENCH_FANOUT_CONCURRENCY) \
	./target/debug/bench $(BENCH_ONLY)
