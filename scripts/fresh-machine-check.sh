#!/usr/bin/env bash
# fresh-machine-check.sh [--cache DIR] [--keep] [--mirror URL] [--command CMD] [ROOT]
#
# Proves the README's first command on a clean machine. Slow (a full release build from nothing:
# 30-60 minutes on 2 cores), so it is not part of scripts/test.sh; run it by hand, as root, on a
# Debian or Ubuntu x86_64 host with network access to the Debian mirror, crates.io and PyPI:
#
#   1. debootstrap a minimal Debian bookworm (--variant=minbase) into ROOT (default: a new folder
#      under ${TMPDIR:-/tmp}; a given ROOT must be missing or empty). With --cache DIR the bare
#      debootstrap result is kept there as a tarball and unpacked on later runs (debootstrap
#      itself is installed here, through scripts/apt-install.sh, when missing). apt's sources are
#      then those of a Debian install: bookworm, bookworm-updates and bookworm-security.
#   2. Gives that root only what the README assumes a newcomer has: Python 3 with pip
#      (`python3 python3-pip`, without recommends, so no C compiler), `ca-certificates git`, and
#      Rust: this machine's toolchain (`rustc --print sysroot`, 1.95 or newer), bind-mounted
#      read-only at /opt/rust and first on PATH (Debian's own rustc is too old). It checks that
#      there is no C compiler, cmake or libclang: scripts/install-build-deps.sh must bring them.
#      The host's local CA certificates (/usr/local/share/ca-certificates) are copied in, so a
#      TLS-intercepting proxy this machine trusts is trusted inside too.
#   3. Copies the current working tree (tracked files as they are now, plus untracked files git
#      does not ignore; not .git) to /root/anefleet in the root.
#   4. Runs there, in a chroot (/proc, /sys, /dev, /dev/pts, /dev/shm mounted, /etc/resolv.conf
#      copied), as root with an empty HOME and a fresh CARGO_HOME ($CARGO_BUILD_JOBS passed on
#      when set), exactly
#        scripts/install-build-deps.sh && cargo build --release --workspace && target/release/coordinator quickstart
#      and passes when that exits 0 and its stdout holds the results table (a Markdown table with
#      at least one row). --command CMD runs CMD instead (scripts/install-test-deps.sh,
#      models/scripts/make-coreml-fixtures.sh, scripts/check-macos.sh...) and passes on exit 0.
#
# Prints how long each step took (and each command of the README's line, from a DEBUG trap). The
# mounts are taken down on exit, failure and interruption included. The root is deleted after a
# pass; after a failure (or with --keep) it is kept for a look, and its path printed. The
# command's output is saved beside the root: ROOT.log (all of it) and ROOT.log.stdout.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache=""
keep=0
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
variant=minbase
root=""
readme='scripts/install-build-deps.sh && cargo build --release --workspace && target/release/coordinator quickstart'
command=$readme
while [[ $# -gt 0 ]]; do
    case $1 in
        --cache) cache=${2:?--cache needs a folder}; shift 2 ;;
        --keep) keep=1; shift ;;
        --mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
        --command) command=${2:?--command needs a command line}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [[ -z $root ]] || { echo "error: one ROOT only" >&2; exit 2; }; root=$1; shift ;;
    esac
done

[[ $(id -u) -eq 0 ]] || { echo "error: debootstrap, mount and chroot need root; run it as root" >&2; exit 1; }
[[ $(uname -m) == x86_64 ]] || { echo "error: written for x86_64 hosts (the root is amd64)" >&2; exit 1; }
sysroot=$(rustc --print sysroot) || { echo "error: no rustc on PATH: the check gives the root this machine's Rust" >&2; exit 1; }
rust_version=$("$sysroot/bin/rustc" --version)
[[ -x $sysroot/bin/cargo ]] || { echo "error: $sysroot has no bin/cargo" >&2; exit 1; }

if [[ -z $root ]]; then
    root=$(mktemp -d "${TMPDIR:-/tmp}/anefleet-fresh.XXXXXX")
else
    mkdir -p "$root"
    [[ -z $(ls -A "$root") ]] || { echo "error: $root is not empty: a fresh machine starts empty" >&2; exit 1; }
fi
root=$(cd "$root" && pwd -P)
chmod 0755 "$root" # it is the chroot's /: mktemp's 0700 would lock out apt's _apt user
# Mount points are matched by name in /proc/self/mountinfo (which escapes odd characters): a plain
# path, or the teardown could miss a mount and the deletion reach into the host's /dev.
[[ $root =~ ^[A-Za-z0-9._/+-]+$ ]] || { echo "error: ROOT must be a plain path (letters, digits, ._+-/): $root" >&2; exit 1; }
log="$root.log"
line=$command

# Step timing: `step NAME FUNCTION` runs FUNCTION in a subshell under `set -e`, records how long it
# took and leaves its exit status in $step_rc. Never call it as `step ... || ...`: in that context
# bash ignores -e in everything it runs, the subshell included.
timings=()
step_rc=0
step() {
    local name=$1 start=$SECONDS
    shift
    echo "==> $name" >&2
    set +e
    (set -e; "$@")
    step_rc=$?
    set -e
    timings+=("$(printf '%6ss  %s%s' $((SECONDS - start)) "$name" "$([[ $step_rc -eq 0 ]] || echo " (failed, exit $step_rc)")")")
    echo "<== $name: $((SECONDS - start))s$([[ $step_rc -eq 0 ]] || echo ", failed (exit $step_rc)")" >&2
}
must() { step "$@"; [[ $step_rc -eq 0 ]] || exit "$step_rc"; }
print_timings() {
    echo "fresh-machine-check: step times" >&2
    local t
    for t in ${timings[@]+"${timings[@]}"}; do echo "  $t" >&2; done
}

# Every mount point under the root, deepest first.
mounts_under_root() {
    awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
teardown() {
    local rc=$? m
    trap - EXIT INT TERM
    for m in $(mounts_under_root); do
        umount "$m" 2>/dev/null || umount -l "$m" || echo "warning: could not unmount $m" >&2
    done
    print_timings
    if [[ -n $(mounts_under_root) ]]; then
        echo "error: mounts remain under $root; not deleting it" >&2
        rc=1
    elif [[ $rc -eq 0 && $keep -eq 0 ]]; then
        rm -rf --one-file-system "$root"
        echo "fresh-machine-check: PASS (root deleted; the command's output is in $log)" >&2
    else
        [[ $rc -eq 0 ]] && echo "fresh-machine-check: PASS" >&2 || echo "fresh-machine-check: FAIL (exit $rc)" >&2
        echo "fresh-machine-check: the root is kept at $root (delete it with: rm -rf --one-file-system $root); output in $log" >&2
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "fresh-machine-check: root $root, Rust $rust_version ($sysroot), Debian $suite ($variant) from $mirror" >&2

bootstrap() {
    local tarball=""
    [[ -n $cache ]] && tarball="$cache/debian-$suite-$variant-amd64.tar.gz"
    if [[ -n $tarball && -f $tarball ]]; then
        echo "unpacking the cached bare root $tarball" >&2
        tar --numeric-owner -xpzf "$tarball" -C "$root"
        chmod 0755 "$root"
        return
    fi
    command -v debootstrap >/dev/null || "$here/apt-install.sh" "the fresh-machine check" debootstrap
    debootstrap --variant="$variant" --arch=amd64 "$suite" "$root" "$mirror"
    if [[ -n $tarball ]]; then
        mkdir -p "$cache"
        tar --numeric-owner -cpzf "$tarball.tmp.$$" -C "$root" .
        mv "$tarball.tmp.$$" "$tarball"
        echo "cached the bare root in $tarball" >&2
    fi
}

mount_all() {
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
    mkdir -p "$root/opt/rust"
    mount --bind "$sysroot" "$root/opt/rust"
    mount -o remount,bind,ro "$root/opt/rust"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}

sources() { # what a Debian install has: debootstrap writes only `bookworm main`
    local security=${mirror%/debian}/debian-security
    [[ $mirror == */debian ]] || security=http://deb.debian.org/debian-security
    printf '%s\n' "deb $mirror $suite main" "deb $mirror $suite-updates main" \
        "deb $security $suite-security main" >"$root/etc/apt/sources.list"
}

in_root() { # COMMAND: runs a bash command line in the chroot, with a newcomer's environment
    chroot "$root" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb \
        PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CARGO_HOME=/root/.cargo ${CARGO_BUILD_JOBS:+CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS} \
        /bin/bash -c "$1"
}

newcomer() {
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    in_root 'set -e
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip ca-certificates git >/dev/null
        update-ca-certificates >/dev/null
        python3 -m pip --version
        rustc --version && cargo --version'
    # The premise: none of what install-build-deps.sh installs is there yet.
    local present
    present=$(in_root 'for c in cc gcc g++ c++ clang cmake; do command -v $c; done; ls /usr/lib/*/libclang* /usr/lib/llvm-*/lib/libclang* 2>/dev/null; true')
    if [[ -n $present ]]; then
        echo "error: the root is not bare, it already has: $present" >&2
        return 1
    fi
}

copy_tree() {
    mkdir -p "$root/root/anefleet"
    # Tracked files as they are in the working tree (not deleted ones) and untracked, not ignored.
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$root/root/anefleet"
    echo "copied $(find "$root/root/anefleet" -type f | wc -l) files of $repo ($(git -C "$repo" rev-parse --short HEAD) plus its working-tree changes)" >&2
}

readme_command() {
    # A DEBUG trap stamps each of the line's commands as it starts (readme_substeps reads the stamps).
    # stdout goes to $log.stdout (for the results table) and, with stderr, to $log and our stderr.
    { in_root "cd /root/anefleet && trap 'echo \"\$EPOCHSECONDS \$BASH_COMMAND\" >> /root/.steps' DEBUG && $line" |
        tee "$log.stdout"; } 2>&1 | tee "$log" >&2
}
readme_substeps() { # END: how long each command of the line took, from the stamps
    local end=$1 t c prev_t="" prev_c=""
    [[ -f $root/root/.steps ]] || return 0
    while read -r t c; do
        [[ $c == trap* ]] && continue
        [[ -n $prev_t ]] && timings+=("$(printf '%6ss    %s' $((t - prev_t)) "$prev_c")")
        prev_t=$t prev_c=$c
    done < "$root/root/.steps"
    [[ -z $prev_t ]] || timings+=("$(printf '%6ss    %s' $((end - prev_t)) "$prev_c")")
}

results_table() {
    # A Markdown table: a header, its |---| separator, and at least one row.
    awk '/^\|( *:?-+:? *\|)+ *$/ { sep = 1; next } sep && /^\| .* \|$/ { rows++ } END { exit !(rows > 0) }' "$log.stdout" ||
        { echo "error: the command's stdout ($log.stdout) has no results table" >&2; return 1; }
    echo "the results table:" >&2
    grep '^|' "$log.stdout" >&2
}

must "debootstrap $suite ($variant)" bootstrap
must "mounts" mount_all
must "apt sources" sources
must "newcomer's packages (python3 python3-pip ca-certificates git), Rust from the host" newcomer
must "copy the working tree" copy_tree
step "in the root: $line" readme_command
readme_substeps "$EPOCHSECONDS"
[[ $step_rc -eq 0 ]] || exit "$step_rc"
[[ $line != "$readme" ]] || must "results table in stdout" results_table
