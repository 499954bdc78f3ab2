# ami-lifecycle — the targets read like the README.
#   make demo       the whole lifecycle on the local emulator (ami-sim demo; installs what it needs)
#   make test       everything CI runs: fmt, clippy, unit/adapter/emulator tests, template checks
#   make emulator   the emulator in the foreground on 127.0.0.1:$(EMULATOR_PORT)
#   make bench      benchmarks (table + JSON in bench/results/)
#   make package    sam build with cargo-lambda (ARCH=arm64|x86_64), zipped sizes
#   make deploy     sam deploy --guided
#   make live-test  opt-in: the lifecycle on a real AWS account (AMI_LIFECYCLE_LIVE=1)
.DEFAULT_GOAL := help
SHELL := /bin/bash

include infra/emulator/emulator.mk
include infra/infra.mk
include infra/bench.mk

CARGO ?= cargo
# Tests start emulators of their own; keep SDK retries low so injected faults reach the code.
export AWS_MAX_ATTEMPTS ?= 2
export CARGO_TERM_COLOR ?= never

.PHONY: help test python-checks rust-fmt rust-lint rust-test demo bench setup rust-toolchain standalone-check

help:
	@sed -n '2,8p' Makefile | sed 's/^# //'

## Everything a test needs is installed here: Rust components, the emulator's virtualenv,
## cfn-lint, the SAM CLI and cfn-guard (make tools), Chromium (make browser). cargo-lambda and
## zig, which only `make package` uses, are installed by that target.
setup: emulator-venv tools browser rust-toolchain

rust-toolchain:
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

## The Python side (installing the virtualenvs, then the emulator's own tests, moto's suite
## against it, the template checks) runs beside the Rust build and tests instead of before
## and after them: the build leaves a core idle through its long one-crate stretches
## (aws-sdk-ec2). The Rust tests need the emulator's virtualenv, so they start once the
## Python side has installed it (PYTHON_SETUP_DONE), or once that side has ended without
## it (then rust-test's own prerequisite installs it and says why it cannot). The Python
## side's output is kept in PYTHON_CHECKS_LOG and printed once both sides are done; either
## one failing fails the target.
PYTHON_CHECKS_LOG ?= target/python-checks.log
PYTHON_SETUP_DONE := target/.python-setup-done

test: rust-toolchain standalone-check rust-fmt
	@mkdir -p $(dir $(PYTHON_CHECKS_LOG)); rm -f $(PYTHON_SETUP_DONE)
	@( start=$$SECONDS; $(MAKE) --no-print-directory emulator-venv tools && touch $(PYTHON_SETUP_DONE) \
	   && echo "python setup: done after $$((SECONDS - start)) s" \
	   && $(MAKE) --no-print-directory python-checks; rc=$$?; \
	   echo "python checks: exit $$rc after $$((SECONDS - start)) s"; exit $$rc ) \
	   > $(PYTHON_CHECKS_LOG) 2>&1 & python=$$!; \
	 start=$$SECONDS; $(MAKE) --no-print-directory browser rust-lint \
	   && { while [ ! -e $(PYTHON_SETUP_DONE) ] && kill -0 $$python 2>/dev/null; do sleep 1; done; \
	        $(MAKE) --no-print-directory rust-test; }; rust=$$?; \
	 echo "rust checks: exit $$rust after $$((SECONDS - start)) s"; \
	 wait $$python; python=$$?; \
	 echo "--- python checks, run beside the Rust side ($(PYTHON_CHECKS_LOG)):"; \
	 cat $(PYTHON_CHECKS_LOG); \
	 if [ $$rust -ne 0 ] || [ $$python -ne 0 ]; then \
	   echo "make test: FAILED (rust checks: exit $$rust, python checks: exit $$python)"; exit 1; fi
	@echo "make test: all checks passed"

## What `make test` runs beside the Rust side.
python-checks: emulator-test infra-check

rust-fmt:
	$(CARGO) fmt --all --check

## Clippy and the tests share one build: `cargo clippy` is `cargo check` with clippy-driver as
## the workspace members' compiler, and a check builds every dependency a second time (metadata
## only, which the tests cannot use). So rust-lint runs the tests' own build (all targets, as
## clippy --all-targets checks them) through clippy-driver, handing it `-D warnings` the way
## cargo-clippy does; rust-test runs with the same settings and so reuses that build.
## infra/checks/lint-gate.sh first proves that a clippy warning fails such a build.
CLIPPY_DRIVER ?= clippy-driver
RUST_LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

rust-lint:
	$(RUST_LINTED) bash infra/checks/lint-gate.sh
	$(RUST_LINTED) $(CARGO) build --workspace --all-targets --locked

# REQUIRE_CHROMIUM: the estate report's browser test fails instead of skipping.
rust-test: emulator-venv browser
	REQUIRE_CHROMIUM=1 $(RUST_LINTED) $(CARGO) test --workspace --locked

## The headless browser of the estate report's test (tests/estate_report.rs): the
## distribution's Chromium, installed when missing (through sudo when not root).
.PHONY: browser
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; else \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing chromium from the distribution's packages"; \
	  $$sudo apt-get update -q && $$sudo apt-get install -y --no-install-recommends chromium; \
	fi

demo: emulator-venv
	$(CARGO) build --locked -p ami-sim
	bash infra/demo/run.sh

## The repository stands alone (no reference to the team folder or a machine path), and the
## check itself fails on a scratch repository that breaks the rule.
standalone-check:
	bash infra/checks/standalone.sh
	@tmp=$$(mktemp -d); git -C $$tmp init -q; printf 'see ../%s/fixtures\n' shared > $$tmp/bad.txt; \
	git -C $$tmp add bad.txt; \
	if bash infra/checks/standalone.sh $$tmp >/dev/null 2>&1; then rm -rf $$tmp; echo "standalone-check: the check let a bad file through" >&2; exit 1; fi; \
	rm -rf $$tmp; echo "standalone-check: the check refuses a file that refers outside the repository"

## Opt-in: the lifecycle on a real AWS account (README "Checking against real AWS"); never
## part of `make test`. Refuses (exit 2) unless AMI_LIFECYCLE_LIVE=1 and credentials resolve;
## `make live-test LIVE_DRY_RUN=1` prints what it would create and cost, calling nothing.
.PHONY: live-test
live-test:
	LIVE_DRY_RUN=$(LIVE_DRY_RUN) AWS_MAX_ATTEMPTS=$${LIVE_MAX_ATTEMPTS:-5} $(CARGO) run --locked -q -p live-test
