# infra/bench.mk - `make bench`: the benchmarks of issue 9 (never part of `make test`).
#
# Builds the release binaries that are measured (amictl + the five functions, host
# architecture) and the bench orchestrator (a dev build: it only seeds, starts and times
# the release binaries), then runs it. Each benchmark starts its own emulator on
# 127.0.0.1. Results: bench/results/latest.json and latest.md; the table is printed.
# The arm64 zipped sizes come from .aws-sam/build (run `make package` first; without it
# the size rows say "not built").
#   make bench                     all four benchmarks (~15 min on 2 cores)
#   make bench BENCH_ONLY=burst    some of: cleanup burst functions inventory

CARGO       ?= cargo
BENCH_ONLY  ?=

.PHONY: bench

bench: emulator-venv
	$(CARGO) build --release --locked -p amictl -p create-image -p replicate -p share -p cleanup -p publish
	$(CARGO) build --locked -p bench
	BENCH_BIN_DIR=$(CURDIR)/target/release ./target/debug/bench $(BENCH_ONLY)
