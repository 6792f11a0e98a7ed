#!/usr/bin/env bash
# Tests what scripts/install-test-deps.sh asks scripts/apt-install.sh for, without installing
# anything: PostgreSQL and Chromium are looked for in a fake tree ($ANEFLEET_SYSROOT), and PATH
# holds only the tools the scripts use plus fakes: `apt-get` (records its arguments), `sudo`
# (runs its arguments), and `prometheus`/`promtool` (present in every case). A PostgreSQL is
# found only when its `postgres` answers `--version`. $1: another scripts folder to test
# (default: this one). Prints one PASS/FAIL line per case; exits 1 when any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scripts="$(cd "${1:-$repo/scripts}" && pwd)"

if ! grep -q ANEFLEET_SYSROOT "$scripts/install-test-deps.sh"; then
    echo "FAIL install-test-deps.sh does not look in \$ANEFLEET_SYSROOT, so it cannot be tested against a fake tree"
    exit 1
fi

allow_tools bash env dirname id cat mkdir printf

fakes="$tmp/fakes"
mkdir -p "$fakes"
printf '#!/usr/bin/env bash\necho "$*" >>"$FAKE_APT_LOG"\n' >"$fakes/apt-get"
printf '#!/usr/bin/env bash\nexec "$@"\n' >"$fakes/sudo"
printf '#!/bin/sh\nexit 0\n' >"$fakes/prometheus"
printf '#!/bin/sh\nexit 0\n' >"$fakes/promtool"
chmod +x "$fakes"/*

n=0
# case NAME WANT_APT: runs install-test-deps.sh on a fresh fake root (made by $setup, a function
# run with $r set, after Chromium is laid there); WANT_APT is the apt-get calls, one per line.
case_() {
    local name=$1 want_apt=$2 rc=0 problem=""
    n=$((n + 1))
    r="$tmp/root$n"
    mkdir -p "$r/usr/bin"
    printf '#!/bin/sh\nexit 0\n' >"$r/usr/bin/chromium"
    chmod +x "$r/usr/bin/chromium"
    ${setup:-true}
    : >"$tmp/apt.log"
    env -i PATH="$fakes:$tools" ANEFLEET_SYSROOT="$r" FAKE_APT_LOG="$tmp/apt.log" \
        "$tools/bash" "$scripts/install-test-deps.sh" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [[ $rc -eq 0 ]] || problem="exit $rc, want 0"
    same_calls apt-get "$(cat "$tmp/apt.log")" "$want_apt"
    verdict "$name" "$tmp/err"
    setup=""
}
# postgres_at VERSION ANSWERS: Debian's layout, its postgres answering --version or not.
postgres_at() {
    local bin="$r/usr/lib/postgresql/$1/bin"
    mkdir -p "$bin"
    printf '#!/bin/sh\nexit 0\n' >"$bin/initdb"
    printf '#!/bin/sh\nexit %s\n' "$2" >"$bin/postgres"
    chmod +x "$bin"/*
}
debian_postgres() { postgres_at 15 0; }
broken_postgres() { postgres_at 15 1; }
client_only() { mkdir -p "$r/usr/lib/postgresql/15/bin"; printf '#!/bin/sh\nexit 0\n' >"$r/usr/lib/postgresql/15/bin/psql"; }

case_ "no PostgreSQL -> apt-get install postgresql" $'update -qq\ninstall -y -qq postgresql'

setup=client_only
case_ "only PostgreSQL's client (psql) -> apt-get install postgresql" $'update -qq\ninstall -y -qq postgresql'

setup=broken_postgres
case_ "initdb and a postgres that does not answer --version -> apt-get install postgresql" $'update -qq\ninstall -y -qq postgresql'

setup=debian_postgres
case_ "Debian's postgresql-15 server programs -> no apt-get" ""

exit $failed
