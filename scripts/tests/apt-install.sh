#!/usr/bin/env bash
# Tests scripts/apt-install.sh with fakes, installing nothing: `apt-get` records its arguments and
# the DEBIAN_FRONTEND it got, `id` says root or not ($FAKE_UID), `sudo` resets the environment as
# sudo's env_reset does, then runs its arguments. Prints one PASS/FAIL line per case; exits 1
# when any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

allow_tools bash env cat
fakes="$tmp/fakes" nosudo="$tmp/nosudo" noapt="$tmp/noapt"
mkdir -p "$fakes" "$nosudo" "$noapt"
printf '#!/usr/bin/env bash\necho "${DEBIAN_FRONTEND:-(no DEBIAN_FRONTEND)} $*" >>"$FAKE_LOG"\n' >"$fakes/apt-get"
printf '#!/usr/bin/env bash\n[[ $1 == -u ]] && echo "$FAKE_UID"\n' >"$fakes/id"
printf '#!/usr/bin/env bash\necho "sudo $*" >>"$FAKE_LOG"\nexec env -i PATH="$PATH" FAKE_LOG="$FAKE_LOG" "$@"\n' >"$fakes/sudo"
cp "$fakes/apt-get" "$fakes/id" "$nosudo/"
cp "$fakes/id" "$fakes/sudo" "$noapt/"
chmod +x "$fakes"/* "$nosudo"/* "$noapt"/*

# case_ NAME WANT_RC WANT_LOG BIN UID ARGS...: WANT_LOG is what the fakes recorded, one line each.
case_() {
    local name=$1 want_rc=$2 want=$3 bin=$4 uid=$5 rc=0 log problem=""
    shift 5
    : >"$tmp/log"
    env -i PATH="$bin:$tools" FAKE_UID="$uid" FAKE_LOG="$tmp/log" "$tools/bash" "$repo/scripts/apt-install.sh" "$@" \
        >/dev/null 2>"$tmp/err" || rc=$?
    log=$(cat "$tmp/log")
    [[ $rc -eq $want_rc ]] || problem="exit $rc, want $want_rc"
    same_calls recorded "$log" "$want"
    verdict "$name" "$tmp/err"
    want_err=""
}

want_err="installing cmake g++ (building)"
case_ "as root: apt-get update, then a non-interactive install" 0 \
    $'(no DEBIAN_FRONTEND) update -qq\nnoninteractive install -y -qq cmake g++' "$fakes" 0 building cmake g++
case_ "not root: through sudo, still non-interactive (sudo drops the environment)" 0 \
    $'sudo apt-get update -qq\n(no DEBIAN_FRONTEND) update -qq\nsudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake\nnoninteractive install -y -qq cmake' \
    "$fakes" 1000 building cmake
case_ "--no-install-recommends is passed on" 0 \
    $'(no DEBIAN_FRONTEND) update -qq\nnoninteractive install -y -qq --no-install-recommends prometheus' \
    "$fakes" 0 --no-install-recommends tests prometheus
case_ "nothing to install: no apt-get at all" 0 "" "$fakes" 0 building
want_err="building needs cmake: run this as root, or install them (apt-get install cmake)"
case_ "not root and no sudo: exit 1, says what to install" 1 "" "$nosudo" 1000 building cmake
want_err="building needs cmake; install them"
case_ "no apt-get: exit 1, says what is needed and why" 1 "" "$noapt" 0 building cmake

exit $failed
