#!/usr/bin/env bash
# Type-checks the agent for Apple Silicon macOS (aarch64-apple-darwin) from Linux, with every
# Apple feature on: the CoreML backend, candle's Metal unit, the macOS probes and the launchd
# installer. Debian's rustc-web ships the standard library's sources, so `-Zbuild-std` builds
# std for the target; nothing is linked (there is no macOS SDK here), every line is compiled.
# llama.cpp is left out (`--no-default-features`): its build script compiles C++ for the target.
#
# It uses Debian's Rust, not rustup's: -Zbuild-std needs a cargo, a rustc and std sources of one
# version, and the rustc's sysroot is where cargo looks for those sources. Installs from Debian's
# packages (as root, or through sudo), when /usr/bin/rustc is missing or older than the
# workspace's rust-version, /usr/bin/cargo is missing or another version, or the sources are not
# in `rustc --print sysroot`/lib/rustlib/src/rust/library: rustc-web, cargo-web, rust-web-src
# (bookworm carries the current ones in bookworm-security; about 650 MB installed). They replace
# Debian's older rustc/cargo/rust-src packages if those are installed; rustup's toolchains are
# untouched. $ANEFLEET_DEBIAN_RUST (default /usr) is where that Rust lives: bin/rustc, bin/cargo
# (for scripts/tests/check-macos.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix=${ANEFLEET_DEBIAN_RUST:-/usr}
rustc=$prefix/bin/rustc
cargo=$prefix/bin/cargo
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
packages=(rustc-web cargo-web rust-web-src)

# What keeps that Rust from doing the check, asked of the tools themselves; nothing when fine.
problem() {
    local v cv src owner sv
    [[ -x $rustc ]] || { echo "there is no $rustc"; return; }
    v=$("$rustc" --version 2>/dev/null | awk '{print $2}')
    [[ -n $v ]] || { echo "$rustc --version fails"; return; }
    [[ $(printf '%s\n' "$need" "$v" | sort -V | head -n1) == "$need" ]] ||
        { echo "$rustc is $v, older than the workspace's rust-version $need"; return; }
    [[ -x $cargo ]] || { echo "there is no $cargo"; return; }
    cv=$("$cargo" --version 2>/dev/null | awk '{print $2}')
    [[ $cv == "$v" ]] || { echo "$cargo is ${cv:-broken}, not $rustc's $v"; return; }
    src="$("$rustc" --print sysroot)/lib/rustlib/src/rust/library"
    [[ -f $src/Cargo.lock ]] || { echo "$rustc has no standard library sources ($src)"; return; }
    # The sources carry no version of their own: ask the package that installed them, if any.
    if command -v dpkg-query >/dev/null && owner=$(dpkg-query -S "$src/Cargo.lock" 2>/dev/null); then
        owner=${owner%%:*}
        sv=$(dpkg-query -W -f='${Version}' "$owner" 2>/dev/null || true)
        sv=${sv#*:}
        sv=${sv%%[+~-]*}
        [[ -z $sv || $sv == "$v" ]] || { echo "the standard library sources in $src ($owner) are $sv, $rustc is $v"; return; }
    fi
}

why=$(problem)
if [[ -n $why ]]; then
    echo "check-macos: $why" >&2
    scripts/apt-install.sh "the macOS type-check (Debian's Rust with its std sources, for -Zbuild-std)" "${packages[@]}"
    why=$(problem)
    if [[ -n $why ]]; then
        echo "error: after installing ${packages[*]}: $why (bookworm's current rustc-web comes from bookworm-security: is it in apt's sources?)" >&2
        exit 1
    fi
fi
# Its own target folder: a different compiler, so nothing in the workspace's is reusable. Beside
# $CARGO_TARGET_DIR when that is set (.ci/run keeps both outside the clone), else target/macos-check.
target_dir=target/macos-check
[[ -z ${CARGO_TARGET_DIR:-} ]] || target_dir="${CARGO_TARGET_DIR%/}-macos-check"
RUSTC=$rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target_dir "$cargo" check --locked \
    -Zbuild-std=std,panic_abort --target aarch64-apple-darwin \
    -p agent --no-default-features --features metal --all-targets "$@"
