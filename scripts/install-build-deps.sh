#!/usr/bin/env bash
# What building the agent needs besides Rust: llama.cpp (the `llamacpp` backend, on by default)
# is compiled from source by llama-cpp-sys-2, which runs cmake and generates its bindings with
# libclang. Installs them from Debian's packages when they are missing (as root, or through sudo).
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
libclang=${LIBCLANG_PATH:-}
for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so*; do [[ -e $f ]] && libclang=$f; done
[[ -n $libclang ]] || missing+=(libclang-dev)
exec "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" \
    "compiling llama.cpp (or build without it: cargo build --release --workspace --no-default-features)" ${missing[@]+"${missing[@]}"}
