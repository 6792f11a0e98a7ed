#!/usr/bin/env bash
# Tests when scripts/check-macos.sh installs Debian's Rust (rustc-web cargo-web rust-web-src) and
# how it then runs cargo, with fakes: a fake Rust under $ANEFLEET_DEBIAN_RUST (bin/rustc answers
# --version and --print sysroot; bin/cargo answers --version and records any other call), a
# fake `apt-get` that records its calls and, on install, lays down a good fake Rust (1.96.0 with
# its std sources) unless $FAKE_APT_NOOP, and, in one case, a fake `dpkg-query`. PATH holds only
# those and the tools the script uses. Prints one PASS/FAIL line per case; exits 1 when any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

allow_tools bash env sed head awk sort printf dirname cat id mkdir rm chmod
fakes="$tmp/fakes"
mkdir -p "$fakes"

# fake_rust PREFIX RUSTC_VERSION CARGO_VERSION SOURCES(yes|no): a fake Debian Rust under PREFIX
# (a version of - leaves that binary out).
cat >"$fakes/fake-rust" <<'EOF'
#!/usr/bin/env bash
set -eu
p=$1
rm -rf "$p/bin" "$p/lib/rustlib/src"
mkdir -p "$p/bin"
if [[ $2 != - ]]; then
    printf '#!/usr/bin/env bash\ncase $1 in --version) echo "rustc %s (fake 2026-01-01)";; --print) echo %s;; esac\n' "$2" "$p" >"$p/bin/rustc"
    chmod +x "$p/bin/rustc"
fi
if [[ $3 != - ]]; then
    printf '#!/usr/bin/env bash\nif [[ $1 == --version ]]; then echo "cargo %s (fake)"; exit; fi\necho "RUSTC=$RUSTC RUSTC_BOOTSTRAP=$RUSTC_BOOTSTRAP CARGO_TARGET_DIR=$CARGO_TARGET_DIR $*" >>"$FAKE_CARGO_LOG"\n' "$3" >"$p/bin/cargo"
    chmod +x "$p/bin/cargo"
fi
if [[ $4 == yes ]]; then mkdir -p "$p/lib/rustlib/src/rust/library" && : >"$p/lib/rustlib/src/rust/library/Cargo.lock"; fi
EOF
cat >"$fakes/apt-get" <<'EOF'
#!/usr/bin/env bash
set -eu
echo "$*" >>"$FAKE_APT_LOG"
[[ $1 == install && -z ${FAKE_APT_NOOP:-} ]] || exit 0
fake-rust "$ANEFLEET_DEBIAN_RUST" 1.96.0 1.96.0 yes
EOF
printf '#!/usr/bin/env bash\nexec "$@"\n' >"$fakes/sudo"
chmod +x "$fakes"/*
dpkg_fakes="$tmp/dpkg" # says the std sources came from Debian's rust-src 1.63
mkdir -p "$dpkg_fakes"
cat >"$dpkg_fakes/dpkg-query" <<'EOF'
#!/usr/bin/env bash
case $1 in
    -S) echo "rust-src: $2" ;;
    -W) echo "1.63.0+dfsg1-2" ;;
esac
EOF
chmod +x "$dpkg_fakes/dpkg-query"

install=$'update -qq\ninstall -y -qq rustc-web cargo-web rust-web-src'
n=0
# case_ NAME WANT_RC WANT_APT WANT_CARGO RUSTC CARGO SOURCES [VAR=VALUE...]: WANT_CARGO is yes when
# the type-check must run (with the fake Rust's rustc and -Zbuild-std), no when it must not.
case_() {
    local name=$1 want_rc=$2 want_apt=$3 want_cargo=$4 rc=0 problem="" apt calls want_target=${target:-target/macos-check}
    shift 4
    n=$((n + 1))
    local p="$tmp/rust$n"
    PATH="$fakes:$tools" "$fakes/fake-rust" "$p" "$1" "$2" "$3"
    shift 3
    : >"$tmp/apt.log"
    : >"$tmp/cargo.log"
    env -i PATH="${extra:-}$fakes:$tools" ANEFLEET_DEBIAN_RUST="$p" FAKE_APT_LOG="$tmp/apt.log" \
        FAKE_CARGO_LOG="$tmp/cargo.log" "$@" "$tools/bash" "$repo/scripts/check-macos.sh" >"$tmp/out" 2>"$tmp/err" || rc=$?
    apt=$(cat "$tmp/apt.log")
    calls=$(cat "$tmp/cargo.log")
    [[ $rc -eq $want_rc ]] || problem="exit $rc, want $want_rc"
    same_calls apt-get "$apt" "$want_apt"
    if [[ $want_cargo == yes ]]; then
        [[ $calls == "RUSTC=$p/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$want_target check --locked -Zbuild-std=std,panic_abort --target aarch64-apple-darwin -p agent --no-default-features --features metal --all-targets" ]] ||
            problem="${problem:+$problem; }cargo calls '$calls'"
    else
        [[ -z $calls ]] || problem="${problem:+$problem; }cargo ran: '$calls'"
    fi
    verdict "$name" "$tmp/err"
    extra="" want_err="" target=""
}

case_ "no Debian Rust -> installs rustc-web cargo-web rust-web-src, then type-checks with it" 0 "$install" yes - - no
case_ "rustc-web, cargo-web, rust-web-src 1.96 there -> no apt-get, type-checks" 0 "" yes 1.96.0 1.96.0 yes
target=/cache/target-macos-check
case_ "CARGO_TARGET_DIR=/cache/target/ -> its target folder beside it, /cache/target-macos-check" 0 "" yes \
    1.96.0 1.96.0 yes CARGO_TARGET_DIR=/cache/target/
want_err="is 1.85.0, older than the workspace's rust-version"
case_ "rustc-web 1.85 (older than rust-version) -> installs (upgrades)" 0 "$install" yes 1.85.0 1.85.0 yes
want_err="there is no $tmp/rust5/bin/cargo"
case_ "rustc-web and rust-web-src without cargo-web -> installs" 0 "$install" yes 1.96.0 - yes
case_ "a cargo of another version than rustc -> installs" 0 "$install" yes 1.96.0 1.85.0 yes
want_err="has no standard library sources"
case_ "no std sources in rustc's sysroot -> installs" 0 "$install" yes 1.96.0 1.96.0 no
extra="$dpkg_fakes:"; want_err="(rust-src) are 1.63.0"
case_ "std sources of another version (dpkg: rust-src 1.63) -> installs; still so after -> exit 1, no type-check" 1 \
    "$install" no 1.96.0 1.96.0 yes FAKE_APT_NOOP=1
want_err="bookworm-security"
case_ "Debian's rustc 1.63 and no newer rustc-web to be had -> exit 1, no type-check" 1 "$install" no 1.63.0 1.63.0 yes \
    FAKE_APT_NOOP=1

exit $failed
