#!/usr/bin/env bash
# Proves that the lint gate of `make rust-lint` still fails on a clippy warning.
#
# `make rust-lint` does not run `cargo clippy` (a `cargo check`, whose metadata-only build of
# every dependency the tests cannot reuse): it runs the tests' own build with clippy-driver as
# the workspace members' compiler, the way cargo-clippy itself drives it (RUSTC_WORKSPACE_WRAPPER,
# and CLIPPY_ARGS holding `-D warnings` separated by __CLIPPY_HACKERY__). Should a toolchain stop
# honouring that, the build would pass without linting anything; so this script builds a scratch
# crate holding one clippy warning (clippy::ptr_arg) with the same environment and fails unless
# the build fails on that lint. No dependencies: it takes about a second.
# Usage: RUSTC_WORKSPACE_WRAPPER=... CLIPPY_ARGS=... lint-gate.sh
set -euo pipefail
: "${RUSTC_WORKSPACE_WRAPPER:?set RUSTC_WORKSPACE_WRAPPER (clippy-driver) as make rust-lint does}"
: "${CLIPPY_ARGS:?set CLIPPY_ARGS as make rust-lint does}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
cat >"$tmp/Cargo.toml" <<'EOF'
[package]
name = "lint-gate-probe"
version = "0.1.0"
edition = "2021"

[workspace]
EOF
cat >"$tmp/src/lib.rs" <<'EOF'
//! A clippy warning and nothing else: `&Vec<u32>` where `&[u32]` would do (clippy::ptr_arg).
pub fn total(values: &Vec<u32>) -> u32 {
    values.iter().sum()
}
EOF
if out=$(cd "$tmp" && CARGO_TARGET_DIR="$tmp/target" cargo build --quiet --offline 2>&1); then
  echo "lint-gate: a crate with a clippy warning built without error; the lint gate lints nothing" >&2
  exit 1
fi
if ! grep -q 'clippy::ptr_arg' <<<"$out"; then
  echo "$out" >&2
  echo "lint-gate: the probe failed, but not on its clippy warning (clippy::ptr_arg)" >&2
  exit 1
fi
echo "lint-gate: a clippy warning fails the build"
