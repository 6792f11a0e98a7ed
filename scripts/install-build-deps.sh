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
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "error: building the agent needs ${missing[*]}; install them (or build without llama.cpp:" \
         "cargo build --release --workspace --no-default-features)" >&2
    exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing ${missing[*]} (needed to compile llama.cpp)" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
