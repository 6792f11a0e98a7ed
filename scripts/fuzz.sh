#!/usr/bin/env bash
# fuzz.sh [TARGET…] [--seconds N]: runs the wire contract's cargo-fuzz targets (fuzz/), each for
# N seconds (default 60), seeded with the committed hostile corpus (proto/tests/corpus/<folder>).
# Targets: spec_parse, histogram_decode, archive_extract, result_check (default: all four).
#
# Installs what it needs when missing (as root, or through sudo for Debian packages): a C++
# compiler (libFuzzer is compiled from source), Rust (rustup), cargo-fuzz. Fuzzing needs
# unstable compiler flags: a nightly toolchain is used when installed, else stable with
# RUSTC_BOOTSTRAP=1.
#
# Each crash, out-of-memory or timeout input is copied into the target's corpus folder as
# fuzz-<kind>-<hash>.<ext>; the replay test (proto/tests/hostile_corpus.rs) then fails until
# the file has an expectation in that folder's expect.toml. New inputs that only widen coverage
# stay in fuzz/corpus/<target> (not committed). Prints, per target: runs executed, seconds,
# crashes; exits 1 when any target crashed or did not run.
#
# Environment: FUZZ_MAX_LEN (largest generated input, bytes; default 16384), FUZZ_JOBS (child
# processes per target; default 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
here=scripts

all=(spec_parse histogram_decode archive_extract result_check)
seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --seconds=*) seconds=${1#--seconds=}; shift ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "error: unknown option $1 (usage: scripts/fuzz.sh [TARGET…] [--seconds N])" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "error: --seconds $seconds: a whole number of seconds, at least 1" >&2; exit 2; }
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")

folder_of() {
    case $1 in
        spec_parse) echo spec ;;
        histogram_decode) echo histogram ;;
        archive_extract) echo archive ;;
        result_check) echo result ;;
        *) return 1 ;;
    esac
}
ext_of() {
    case $1 in
        spec_parse) echo toml ;;
        archive_extract) echo tar ;;
        *) echo bin ;;
    esac
}
for t in "${targets[@]}"; do
    folder_of "$t" >/dev/null || { echo "error: no fuzz target $t (targets: ${all[*]})" >&2; exit 2; }
done

# --- what fuzzing needs -------------------------------------------------------------------
missing=()
command -v c++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
if ! command -v cargo >/dev/null && [[ ! -x $HOME/.cargo/bin/cargo ]]; then
    command -v curl >/dev/null || missing+=(curl ca-certificates)
fi
"$here/apt-install.sh" --no-install-recommends "fuzzing (scripts/fuzz.sh)" ${missing[@]+"${missing[@]}"}

if ! command -v cargo >/dev/null; then
    if [[ ! -x $HOME/.cargo/bin/cargo ]]; then
        echo "installing Rust (rustup, minimal profile) for fuzzing" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
fi

toolchain=()
if command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    # cargo-fuzz passes -Z flags (sanitizers, coverage options): allowed on stable this way.
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi

# --- build ---------------------------------------------------------------------------------
echo "building ${targets[*]} (cargo ${toolchain[*]} fuzz build)" >&2
for t in "${targets[@]}"; do
    cargo ${toolchain[@]+"${toolchain[@]}"} fuzz build "$t" >&2
done

# --- run -----------------------------------------------------------------------------------
max_len=${FUZZ_MAX_LEN:-16384}
jobs=${FUZZ_JOBS:-1}
mkdir -p fuzz/logs
summary=()
crashed=0
for t in "${targets[@]}"; do
    folder=$(folder_of "$t")
    seeds=proto/tests/corpus/$folder
    work=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    log=fuzz/logs/$t.log
    mkdir -p "$work" "$artifacts"
    before=$(mktemp)
    ls "$artifacts" >"$before"
    echo "== $t: ${seconds}s, seeded with $seeds" >&2
    start=$(date +%s)
    # Fork mode keeps fuzzing after a crash (each one is saved); the first corpus folder
    # receives new inputs, so the committed seeds come second and stay as they are.
    set +e
    cargo ${toolchain[@]+"${toolchain[@]}"} fuzz run "$t" "$work" "$seeds" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - start))
    # Fork mode reports "#RUNS: cov: … crash: A/B/C time: Ns …" lines; the last one is the total.
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    found=0
    while read -r f; do
        [[ -z $f ]] && continue
        kind=${f%%-*}
        case $kind in crash | oom | timeout | leak) ;; *) continue ;; esac
        hash=$(sha1sum "$artifacts/$f" | cut -c1-12)
        dest="$seeds/fuzz-$kind-$hash.$(ext_of "$t")"
        cp "$artifacts/$f" "$dest"
        echo "   $kind: $dest (add its expectation to $seeds/expect.toml)" >&2
        found=$((found + 1))
    done < <(comm -13 "$before" <(ls "$artifacts"))
    rm -f "$before"
    if [[ -z $runs ]]; then
        # It did not fuzz at all (a build or start failure): say so rather than report 0 runs.
        echo "   $t did not run (exit $status); the end of $log:" >&2
        tail -20 "$log" >&2
        summary+=("$(printf '%-17s did not run (exit %s): see %s' "$t" "$status" "$log")")
        crashed=1
        continue
    fi
    [[ $found -gt 0 ]] && crashed=1
    summary+=("$(printf '%-17s runs %10s   seconds %5s   crashes %s' "$t" "$runs" "$elapsed" "$found")")
done

echo
printf '%s\n' "${summary[@]}"
exit $crashed
