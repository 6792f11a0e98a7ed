#!/usr/bin/env bash
# Tests scripts/find-libclang.sh (or the script given as $1) against fake library trees: each
# case builds a tree under a temporary folder and runs `find-libclang.sh ROOT` in an empty
# environment (no LIBCLANG_PATH, LD_LIBRARY_PATH, LIBRARY_PATH, LLVM_CONFIG_PATH) with a PATH of
# only the tools the script uses (no llvm-config, unless a case brings a fake one). A fake
# library is a file that starts with the ELF header's first bytes (class 2: 64-bit, 1: 32-bit),
# which is all the script and clang-sys read of it. Symlinks are relative, as Debian's are.
# Prints one PASS/FAIL line per case; exits 1 when any failed. Takes about a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
script="$(cd "$(dirname "${1:-$repo/scripts/find-libclang.sh}")" && pwd)/$(basename "${1:-find-libclang.sh}")"

allow_tools bash env head od tr readlink dirname basename uname
bin=$tools # the tools find-libclang.sh runs, and nothing else

n=0
elf64() { for f; do mkdir -p "$(dirname "$f")"; printf '\177ELF\002\001\001\000fake libclang\n' >"$f"; done; }
elf32() { for f; do mkdir -p "$(dirname "$f")"; printf '\177ELF\001\001\001\000fake libclang\n' >"$f"; done; }
link() { mkdir -p "$(dirname "$2")"; ln -s "$1" "$2"; } # TARGET NAME
headers() { mkdir -p "$1/include"; : >"$1/include/stddef.h"; : >"$1/include/stdbool.h"; } # clang/<ver>
newroot() { n=$((n + 1)); r="$tmp/root$n"; mkdir -p "$r"; }

# Debian bookworm's packages, as they lay out their files (paths from `dpkg -L`):
libclang_cpp14() { # libclang-cpp14: the C++ API, not libclang
    elf64 "$r/usr/lib/llvm-14/lib/libclang-cpp.so.14"
    link ../llvm-14/lib/libclang-cpp.so.14 "$r/usr/lib/x86_64-linux-gnu/libclang-cpp.so.14"
}
libclang1_14() { # libclang1-14: the library, no headers
    elf64 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6"
    link libclang-14.so.14.0.6 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.13"
    link libclang-14.so.13 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.1"
    link ../../x86_64-linux-gnu/libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang-14.so.1"
}
libclang_common_14_dev() { # libclang-common-14-dev: clang's resource headers
    headers "$r/usr/lib/llvm-14/lib/clang/14.0.6"
    link ../../../lib/llvm-14/lib/clang/14.0.6/include "$r/usr/include/clang/14.0.6/include"
    link ../../llvm-14/lib/clang/14.0.6/include "$r/usr/lib/clang/14.0.6/include"
}
libclang_14_dev() { # libclang-14-dev: the unversioned names
    link ../../x86_64-linux-gnu/libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang.so"
    link libclang-14.so "$r/usr/lib/llvm-14/lib/libclang-14.0.6.so"
    link ../../x86_64-linux-gnu/libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang-14.so"
    link libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang.so.1"
    link libclang-14.so.1 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so"
}
libclang1_15() { # bookworm's libclang1-15, without its headers
    elf64 "$r/usr/lib/x86_64-linux-gnu/libclang-15.so.15.0.6"
    link libclang-15.so.15.0.6 "$r/usr/lib/x86_64-linux-gnu/libclang-15.so.15"
    link libclang-15.so.15 "$r/usr/lib/x86_64-linux-gnu/libclang-15.so.1"
    link ../../x86_64-linux-gnu/libclang-15.so.1 "$r/usr/lib/llvm-15/lib/libclang-15.so.1"
}

# expect NAME WANT ROOT [VAR=VALUE...]: runs the script on ROOT with those variables; WANT is the
# path it must print (exit 0), or - for none (exit 1, nothing on stdout). With $want_err set,
# its stderr must contain that text.
expect() {
    local name=$1 want=$2 root=$3 out rc=0
    shift 3
    out=$(cd "$tmp" && env -i PATH="${path:-$bin}" "$@" "$bin/bash" "$script" "$root" 2>"$tmp/stderr") || rc=$?
    local problem=""
    if [[ $want == - ]]; then
        [[ $rc -eq 1 && -z $out ]] || problem="want no libclang (exit 1), got exit $rc, stdout '$out'"
    else
        [[ $rc -eq 0 && $out == "$want" ]] || problem="want '$want' (exit 0), got exit $rc, stdout '$out'"
    fi
    verdict "$name" "$tmp/stderr"
    want_err=""
}

newroot; libclang_cpp14
expect "(a) libclang-cpp14 alone (libclang-cpp.so.14 is another library) -> none" - "$r"

newroot; libclang_cpp14; libclang_common_14_dev
expect "(a) libclang-cpp.so.14 with clang's headers beside it -> none" - "$r"

newroot
elf64 "$r/usr/lib/llvm-14/lib/libclang-14.so.1"
link libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang.so"
headers "$r/usr/lib/llvm-14/lib/clang/14.0.6"
# clang-sys loads the higher version of the two names: libclang-14.so.1 reads as 14.0, libclang.so as none.
expect "(b) llvm-14/lib/libclang.so -> libclang-14.so.1 with clang/14.0.6/include -> the file clang-sys picks" \
    "$r/usr/lib/llvm-14/lib/libclang-14.so.1" "$r"

newroot; libclang_cpp14; libclang1_14; libclang_common_14_dev; libclang_14_dev
# As on a bookworm machine: clang-sys reads libclang-14.so.14.0.6 as 14.0.14.0, the highest; its
# headers are beside its other name, llvm-14/lib/libclang.so.
expect "(b) Debian's libclang-dev (libclang1-14, libclang-14-dev, libclang-common-14-dev, libclang-cpp14) -> found" \
    "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6" "$r"

newroot; libclang1_14
want_err="libclang-14.so.14.0.6, the libclang bindgen would load, has no clang resource headers"
expect "(c) libclang1-14 alone (library, no resource headers) -> none" - "$r"

newroot; libclang1_14; libclang_cpp14
expect "(c) libclang1-14 and libclang-cpp14 (what LLVM tools bring) -> none" - "$r"

newroot
elf32 "$r/usr/lib/llvm-14/lib/libclang.so"
headers "$r/usr/lib/llvm-14/lib/clang/14.0.6"
want_err="not a 64-bit library"
expect "(d) a 32-bit libclang.so with headers -> none" - "$r"

newroot
elf32 "$r/usr/lib/llvm-14/lib/libclang-14.so"
elf64 "$r/usr/lib/llvm-13/lib/libclang-13.so"
headers "$r/usr/lib/llvm-14/lib/clang/14.0.6"
headers "$r/usr/lib/llvm-13/lib/clang/13.0.1"
expect "(d) a 32-bit libclang-14 beside a 64-bit libclang-13 -> the 64-bit one" "$r/usr/lib/llvm-13/lib/libclang-13.so" "$r"

newroot
elf64 "$r/usr/lib64/libclang.so.1"
headers "$r/usr/lib64/clang/18"
expect "(e) only the versioned name libclang.so.1, with headers -> found" "$r/usr/lib64/libclang.so.1" "$r"

newroot
elf64 "$r/usr/lib/x86_64-linux-gnu/libclang-18.so.18.1"
headers "$r/usr/lib/x86_64-linux-gnu/clang/18"
expect "(e) only libclang-18.so.18.1, with headers -> found" "$r/usr/lib/x86_64-linux-gnu/libclang-18.so.18.1" "$r"

# LIBCLANG_PATH: clang-sys searches only there.
newroot; empty=$r
newroot; good=$r
elf64 "$good/llvm/lib/libclang.so"
headers "$good/llvm/lib/clang/17"
expect "(f) LIBCLANG_PATH=a folder with a good libclang, nothing under ROOT -> found" \
    "$good/llvm/lib/libclang.so" "$empty" LIBCLANG_PATH="$good/llvm/lib"
expect "(f) LIBCLANG_PATH=that library file -> found" \
    "$good/llvm/lib/libclang.so" "$empty" LIBCLANG_PATH="$good/llvm/lib/libclang.so"
newroot; libclang1_14; libclang_common_14_dev; libclang_14_dev
expect "(f) LIBCLANG_PATH=a folder without libclang, a good one under ROOT -> none" \
    - "$r" LIBCLANG_PATH="$empty"
expect "(f) LIBCLANG_PATH=a missing folder, a good one under ROOT -> none" \
    - "$r" LIBCLANG_PATH="$empty/missing"
expect "(f) LIBCLANG_PATH=llvm-14/lib/libclang.so: that file, not the higher versions beside it" \
    "$r/usr/lib/llvm-14/lib/libclang.so" "$r" LIBCLANG_PATH="$r/usr/lib/llvm-14/lib/libclang.so"
expect "(f) LIBCLANG_PATH=llvm-14/lib: the highest version there" \
    "$r/usr/lib/llvm-14/lib/libclang-14.0.6.so" "$r" LIBCLANG_PATH="$r/usr/lib/llvm-14/lib"
# Only x86_64-linux-gnu is searched, so no other name of the file is seen: Debian's own place.
expect "(f) LIBCLANG_PATH=x86_64-linux-gnu: headers where Debian's libclang looks, /usr/include/clang/14.0.6" \
    "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6" "$r" LIBCLANG_PATH="$r/usr/lib/x86_64-linux-gnu"
expect "(f) LIBCLANG_PATH=libclang-cpp.so.14 (not a libclang name) -> none" \
    - "$r" LIBCLANG_PATH="$r/usr/lib/llvm-14/lib/libclang-cpp.so.14"

# Several versions: clang-sys loads the highest, headers or not.
newroot; libclang1_14; libclang_common_14_dev; libclang_14_dev; libclang1_15
want_err="libclang-15.so.15.0.6, the libclang bindgen would load, has no clang resource headers"
expect "(g) libclang-dev for 14 and a bare libclang1-15: clang-sys loads 15, which has no headers -> none" - "$r"
headers "$r/usr/lib/llvm-15/lib/clang/15.0.6"
expect "(g) ...and once libclang-common-15-dev is there -> 15" \
    "$r/usr/lib/x86_64-linux-gnu/libclang-15.so.15.0.6" "$r"

# Where it looks.
newroot
elf64 "$r/opt/llvm/lib/libclang.so"
headers "$r/opt/llvm/lib/clang/19"
expect "(h) a folder only LD_LIBRARY_PATH names, without it -> none" - "$r"
expect "(h) ...with LD_LIBRARY_PATH=/opt/llvm/lib (under ROOT) -> found" "$r/opt/llvm/lib/libclang.so" "$r" \
    LD_LIBRARY_PATH=/nowhere:/opt/llvm/lib
expect "(h) ...with LIBRARY_PATH=/opt/llvm/lib -> found" "$r/opt/llvm/lib/libclang.so" "$r" LIBRARY_PATH=/opt/llvm/lib

newroot
elf64 "$r/usr/local/llvm19/lib64/libclang.so"
headers "$r/usr/local/llvm19/lib64/clang/19"
expect "(h) /usr/local/llvm*/lib* -> found" "$r/usr/local/llvm19/lib64/libclang.so" "$r"

newroot
link libclang.so.18 "$r/usr/lib/libclang.so"
mkdir -p "$r/usr/lib/libclang-18.so"
headers "$r/usr/lib/clang/18"
expect "(h) a dangling libclang.so symlink and a folder named libclang-18.so -> none" - "$r"

# llvm-config is asked only without ROOT, so this case searches this machine too; version 9999
# outranks whatever libclang it has.
llvm="$tmp/llvm-9999"
elf64 "$llvm/lib/libclang-9999.so"
headers "$llvm/lib/clang/9999"
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\n[ "$1" = --prefix ] && echo %s\n' "$llvm" >"$tmp/fakebin/llvm-config"
chmod +x "$tmp/fakebin/llvm-config"
path="$tmp/fakebin:$bin" expect "(i) llvm-config --prefix (no ROOT) -> its lib" "$llvm/lib/libclang-9999.so" ""
expect "(i) LLVM_CONFIG_PATH names the llvm-config (no ROOT) -> its lib" "$llvm/lib/libclang-9999.so" "" \
    LLVM_CONFIG_PATH="$tmp/fakebin/llvm-config"

# macOS: libclang.dylib from the Command Line Tools (no ELF check; Linux names do not count).
newroot
mkdir -p "$r/Library/Developer/CommandLineTools/usr/lib"
printf '\317\372\355\376fake Mach-O\n' >"$r/Library/Developer/CommandLineTools/usr/lib/libclang.dylib"
headers "$r/Library/Developer/CommandLineTools/usr/lib/clang/17"
elf64 "$r/usr/lib/libclang.so"
expect "(j) macOS: the Command Line Tools' libclang.dylib -> found" \
    "$r/Library/Developer/CommandLineTools/usr/lib/libclang.dylib" "$r" FIND_LIBCLANG_OS=Darwin
rm -r "$r/Library"
headers "$r/usr/lib/clang/17"
expect "(j) macOS: only a Linux libclang.so -> none" - "$r" FIND_LIBCLANG_OS=Darwin

exit $failed
