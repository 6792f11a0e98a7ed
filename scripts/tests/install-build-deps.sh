#!/usr/bin/env bash
# Tests what scripts/install-build-deps.sh asks scripts/apt-install.sh for, without installing
# anything: libclang is looked for in a fake library tree (install-build-deps.sh passes
# $ANEFLEET_SYSROOT to find-libclang.sh as its ROOT), and PATH holds only the tools the scripts
# use plus fakes: `apt-get` (records its arguments; `install ... libclang-dev` lays Debian's
# libclang-dev files into the fake tree, as the real one would), `sudo` (runs its arguments), and
# `cmake` / `g++` where a case has them. $1: another scripts folder to test (default: this one).
# Prints one PASS/FAIL line per case; exits 1 when any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scripts="$(cd "${1:-$repo/scripts}" && pwd)"

if ! grep -q ANEFLEET_SYSROOT "$scripts/install-build-deps.sh"; then
    echo "FAIL install-build-deps.sh does not pass \$ANEFLEET_SYSROOT to find-libclang.sh, so it cannot be tested against a fake tree"
    exit 1
fi

allow_tools bash env head od tr readlink dirname basename uname id cat mkdir ln printf

# The fake apt-get: logs each call; installing libclang-dev writes bookworm's files (library,
# its names, clang's resource headers) under $ANEFLEET_SYSROOT unless $FAKE_APT_NO_HEADERS.
fakes="$tmp/fakes"
mkdir -p "$fakes"
cat >"$fakes/apt-get" <<'EOF'
#!/usr/bin/env bash
set -eu
echo "$*" >>"$FAKE_APT_LOG"
[[ $1 == install && " $* " == *" libclang-dev "* ]] || exit 0
r=$ANEFLEET_SYSROOT
mkdir -p "$r/usr/lib/x86_64-linux-gnu" "$r/usr/lib/llvm-14/lib"
printf '\177ELF\002\001\001\000' >"$r/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6"
ln -s libclang-14.so.14.0.6 "$r/usr/lib/x86_64-linux-gnu/libclang-14.so.1"
ln -s ../../x86_64-linux-gnu/libclang-14.so.1 "$r/usr/lib/llvm-14/lib/libclang.so"
if [[ -z ${FAKE_APT_NO_HEADERS:-} ]]; then
    mkdir -p "$r/usr/lib/llvm-14/lib/clang/14.0.6/include"
    : >"$r/usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h"
fi
EOF
printf '#!/usr/bin/env bash\nexec "$@"\n' >"$fakes/sudo"
present="$tmp/present" # cmake and g++, for the cases that have them
mkdir -p "$present"
printf '#!/bin/sh\nexit 0\n' >"$present/cmake"
printf '#!/bin/sh\nexit 0\n' >"$present/g++"
chmod +x "$fakes"/* "$present"/*

n=0
# case NAME WANT_RC WANT_APT EXTRA_PATH [VAR=VALUE...]: runs install-build-deps.sh on a fresh fake
# root (made by $setup, a function run with $r set); WANT_APT is the apt-get calls, one per line.
case_() {
    local name=$1 want_rc=$2 want_apt=$3 extra=$4 rc=0 apt problem=""
    shift 4
    n=$((n + 1))
    r="$tmp/root$n"
    mkdir -p "$r"
    ${setup:-true}
    : >"$tmp/apt.log"
    env -i PATH="$extra$fakes:$tools" ANEFLEET_SYSROOT="$r" FAKE_APT_LOG="$tmp/apt.log" "$@" \
        "$tools/bash" "$scripts/install-build-deps.sh" >"$tmp/out" 2>"$tmp/err" || rc=$?
    apt=$(cat "$tmp/apt.log")
    [[ $rc -eq $want_rc ]] || problem="exit $rc, want $want_rc"
    same_calls apt-get "$apt" "$want_apt"
    verdict "$name" "$tmp/err"
    setup="" want_err=""
}
libclang_cpp_only() { # libclang-cpp14, which LLVM tools bring: not libclang
    mkdir -p "$r/usr/lib/llvm-14/lib/clang/14.0.6/include"
    printf '\177ELF\002' >"$r/usr/lib/llvm-14/lib/libclang-cpp.so.14"
}
debian_libclang_dev() { FAKE_APT_LOG=/dev/null ANEFLEET_SYSROOT=$r "$fakes/apt-get" install libclang-dev; }

want_err="libclang: $tmp/root1/usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6"
case_ "a machine with none of it -> apt-get install cmake g++ libclang-dev, then libclang is found" 0 \
    $'update -qq\ninstall -y -qq cmake g++ libclang-dev' ""

setup=libclang_cpp_only
case_ "cmake, g++ and only libclang-cpp.so.14 -> apt-get install libclang-dev" 0 \
    $'update -qq\ninstall -y -qq libclang-dev' "$present:"

setup=debian_libclang_dev
case_ "cmake, g++ and Debian's libclang-dev present -> no apt-get" 0 "" "$present:"

want_err="no usable libclang after installing libclang-dev"
case_ "libclang-dev installed without clang's headers -> exit 1, says so" 1 \
    $'update -qq\ninstall -y -qq libclang-dev' "$present:" FAKE_APT_NO_HEADERS=1

exit $failed
