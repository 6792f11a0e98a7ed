#!/usr/bin/env bash
# Type-checks the agent for Apple Silicon macOS (aarch64-apple-darwin) from Linux, with every
# Apple feature on: the CoreML backend, candle's Metal unit, the macOS probes and the launchd
# installer. Debian's rustc-web ships the standard library's sources, so `-Zbuild-std` builds
# std for the target; nothing is linked (there is no macOS SDK here), every line is compiled.
# llama.cpp is left out (`--no-default-features`): its build script compiles C++ for the target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/src/rust/library ]]; then
    scripts/apt-install.sh "the macOS type-check (Debian's Rust with its std sources, for -Zbuild-std)" rustc-web cargo-web rust-web-src
fi
# Its own target folder: a different compiler, so nothing in target/ is reusable.
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/macos-check /usr/bin/cargo check --locked \
    -Zbuild-std=std,panic_abort --target aarch64-apple-darwin \
    -p agent --no-default-features --features metal --all-targets "$@"
