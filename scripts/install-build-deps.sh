#!/usr/bin/env bash
# What building the agent needs besides Rust: llama.cpp (the `llamacpp` backend, on by default)
# is compiled from source by llama-cpp-sys-2, which runs cmake and a C++ compiler and generates
# its bindings with bindgen, which loads libclang. Installs from Debian's packages what is
# missing (as root, or through sudo): cmake, g++, libclang-dev (libclang and clang's resource
# headers). libclang is looked for the way bindgen looks for it (scripts/find-libclang.sh):
# `libclang-cpp`, which LLVM tools bring along, is a different library and does not count.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
# $ANEFLEET_SYSROOT (tests only: scripts/tests/install-build-deps.sh): a fake tree to look in instead of /.
"$here/find-libclang.sh" "${ANEFLEET_SYSROOT:-}" >/dev/null 2>&1 || missing+=(libclang-dev)
"$here/apt-install.sh" \
    "compiling llama.cpp (or build without it: cargo build --release --workspace --no-default-features)" ${missing[@]+"${missing[@]}"}
# What was installed must now be found, or the build would fail minutes later with less to go on.
if ! lib=$("$here/find-libclang.sh" "${ANEFLEET_SYSROOT:-}"); then
    echo "error: no usable libclang after installing libclang-dev; set LIBCLANG_PATH to the folder of libclang.so" >&2
    exit 1
fi
echo "libclang: $lib" >&2
