#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs the lab's
# packages, builds, checks formatting and lints, and runs every test.
# Needs root (Debian packages, port 25, Postfix). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the lab installs packages and binds port 25)" >&2
  exit 2
fi

started=$(date +%s)
bash tests/lab/install.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo build --locked --workspace --bins --tests
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace -- --test-threads=8

echo "tests/run.sh: whole suite took $(( $(date +%s) - started ))s"
