#!/usr/bin/env bash
# find-libclang.sh [ROOT]: prints the libclang that bindgen (through clang-sys 1.9, as
# llama-cpp-sys-2 uses it) would load, and exits 1 when there is none it could use.
#
# It searches where clang-sys searches, for the names clang-sys accepts at runtime on Linux —
# `libclang.so`, `libclang-<ver>.so`, `libclang.so.<ver>`, `libclang-<ver>.so.<n>` — and never
# `libclang-cpp` (a different library, the C++ API, which LLVM tools install without libclang);
# on macOS `libclang.dylib`. $LIBCLANG_PATH, when set, is the only place searched, as clang-sys
# does (a file or a folder); $LLVM_CONFIG_PATH names the llvm-config asked, as for clang-sys.
# Of the 64-bit libraries found it picks the one clang-sys picks: the highest version in the
# file name (clang-sys's reading of it), the first found among equals.
# A library alone is not enough: bindgen parses llama.cpp's headers, which include <stddef.h>
# and <stdbool.h> from clang's resource folder (`<libdir>/clang/<ver>/include`, Debian's
# libclang-common-<ver>-dev); without it the build fails later with "'stddef.h' file not found".
# They are looked for beside the picked library, beside the file it links to, beside every other
# name found for that same file (Debian's /usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6, the
# one picked there, has them beside its other name /usr/lib/llvm-14/lib/libclang.so), and where
# Debian's libclang-<major> also looks: /usr/include/clang/<major>[.*]/include.
#
# ROOT (default /) is prefixed to every searched path, so the detection is tested against fake
# library trees (scripts/tests/find-libclang.sh); $LIBCLANG_PATH is taken as given, and
# llvm-config and xcode-select are asked only without ROOT. $FIND_LIBCLANG_OS (Linux or Darwin,
# default `uname -s`) exists for those tests.
set -euo pipefail
shopt -s nullglob
export LC_ALL=C # glob results in byte order, as clang-sys's glob crate sorts them
root=${1:-}
root=${root%/}
os=${FIND_LIBCLANG_OS:-$(uname -s)}

# Quoted: the patterns are expanded below, under ROOT.
if [[ $os == Darwin ]]; then
    names=(libclang.dylib)
    fixed=('/usr/local/opt/llvm*/lib/llvm*/lib' /Library/Developer/CommandLineTools/usr/lib
           /Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/lib
           '/usr/local/opt/llvm*/lib')
else
    names=(libclang.so 'libclang-*.so' 'libclang.so.*' 'libclang-*.so.*')
    fixed=('/usr/local/llvm*/lib*' '/usr/local/lib*/*/*' '/usr/local/lib*/*' '/usr/local/lib*'
           '/usr/lib*/*/*' '/usr/lib*/*' '/usr/lib*')
fi

# Folders in clang-sys's order: llvm-config's prefix, (macOS) xcode-select's toolchain,
# $LD_LIBRARY_PATH, $LIBRARY_PATH, then its fixed list for the OS.
dirs=()
only=""
if [[ -n ${LIBCLANG_PATH:-} ]]; then
    if [[ -f $LIBCLANG_PATH ]]; then dirs=("$(dirname "$LIBCLANG_PATH")"); only=$(basename "$LIBCLANG_PATH")
    else dirs=("$LIBCLANG_PATH"); fi
else
    if [[ -z $root ]] && prefix=$("${LLVM_CONFIG_PATH:-llvm-config}" --prefix 2>/dev/null | head -n1) && [[ -n $prefix ]]; then
        dirs+=("$prefix/bin" "$prefix/lib" "$prefix/lib64")
    fi
    if [[ -z $root && $os == Darwin ]] && xcode=$(xcode-select --print-path 2>/dev/null | head -n1) && [[ -n $xcode ]]; then
        dirs+=("$xcode/Toolchains/XcodeDefault.xctoolchain/usr/lib")
    fi
    IFS=: read -r -a ld <<<"${LD_LIBRARY_PATH:-}:${LIBRARY_PATH:-}"
    for d in ${ld[@]+"${ld[@]}"}; do [[ -n $d ]] && dirs+=("$root$d"); done
    for pattern in "${fixed[@]}"; do
        for d in "$root"$pattern; do [[ -d $d ]] && dirs+=("$d"); done
    done
fi

valid() { # library: what clang-sys loads on this OS (on Linux a 64-bit ELF)
    [[ $os == Darwin ]] && return 0
    [[ $(head -c 5 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 7f454c4602 ]]
}

# clang-sys's parse_version: `libclang.so.<v>` or `libclang-<v>.so[.*]` (the name less its
# first 9 and last 3 characters), split at dots, each part a u32 or 0. Prints the numbers.
version() {
    local name=$1 v part n out=""
    case $name in
        libclang.so.*) v=${name#libclang.so.} ;;
        libclang-*) v=${name:9:${#name}-12} ;;
        *) return 0 ;;
    esac
    while :; do
        part=${v%%.*} n=0
        if [[ $part =~ ^\+?[0-9]+$ ]]; then
            part=${part#+}
            part=${part#"${part%%[!0]*}"}
            [[ ${#part} -le 10 ]] && n=$((10#${part:-0})) && ((n <= 4294967295)) || n=0
        fi
        out+="$n "
        [[ $v == *.* ]] || break
        v=${v#*.}
    done
    echo "$out"
}

newer() { # A B: version A sorts after version B (element by element, then the longer)
    local a=($1) b=($2) i
    for ((i = 0; i < ${#a[@]} && i < ${#b[@]}; i++)); do
        ((a[i] > b[i])) && return 0
        ((a[i] < b[i])) && return 1
    done
    ((${#a[@]} > ${#b[@]}))
}

found=()
best="" best_version=""
for d in ${dirs[@]+"${dirs[@]}"}; do
    for name in "${names[@]}"; do
        for f in "$d"/$name; do
            [[ -f $f ]] || continue
            base=$(basename "$f")
            [[ $base == *-cpp.* ]] && continue
            [[ -n $only && $base != "$only" ]] && continue
            if ! valid "$f"; then
                echo "find-libclang: $f is not a 64-bit library, skipped" >&2
                continue
            fi
            found+=("$f")
            v=$(version "$base")
            if [[ -z $best ]] || newer "$v" "$best_version"; then best=$f best_version=$v; fi
        done
    done
done
if [[ -z $best ]]; then
    echo "find-libclang: no libclang (${names[*]}) in ${LIBCLANG_PATH:-the folders clang-sys searches}" >&2
    exit 1
fi

real=$(readlink -f "$best" 2>/dev/null || echo "$best")
headers=()
for f in "${found[@]}"; do
    [[ $f == "$best" || $(readlink -f "$f" 2>/dev/null || echo "$f") == "$real" ]] && headers+=("$(dirname "$f")"/clang/*/include/stddef.h)
done
headers+=("$(dirname "$real")"/clang/*/include/stddef.h)
# Debian's libclang-<major> also looks in /usr/include/clang/<version>/include.
major=$(version "$(basename "$real")")
[[ -n $major ]] || major=$(version "$(basename "$best")")
major=${major%% *}
if [[ -n $major && $major != 0 ]]; then
    for h in "$root/usr/include/clang/$major/include/stddef.h" "$root/usr/include/clang/$major".*/include/stddef.h; do
        [[ -f $h ]] && headers+=("$h")
    done
fi
if [[ ${#headers[@]} -gt 0 ]]; then echo "$best"; exit 0; fi
echo "find-libclang: $best, the libclang bindgen would load, has no clang resource headers (clang/<ver>/include/stddef.h beside it)" >&2
exit 1
