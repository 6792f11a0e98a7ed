#!/usr/bin/env bash
# What the tests need besides Rust: PostgreSQL's server programs (Debian's `postgresql`: initdb
# and postgres, in /usr/lib/postgresql/VERSION/bin, where coordinator/tests/common/postgres.rs
# looks for them; the store suite and the replica tests start their own server from them), and
# for the dashboard tests a real headless Chromium (Debian's `chromium`, at
# /usr/bin/chromium, where coordinator/tests/common/browser.rs starts it) for the web pages and
# the HTML report, and Prometheus with promtool (Debian's `prometheus`, found on PATH as the
# tests run them) for /metrics and the Grafana dashboards' queries. Installs them from Debian's
# packages when they are missing (as root, or through sudo): chromium, and prometheus without
# its recommended prometheus-node-exporter. Debian's prometheus package starts a Prometheus
# service (on :9090, all interfaces) where systemd runs; the tests start their own, so when this
# script installed it, it stops and disables that service again.
# $ANEFLEET_SYSROOT (tests only: scripts/tests/install-test-deps.sh): a fake tree to look in instead of /.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
root="${ANEFLEET_SYSROOT:-}"
# Stops and disables a service a package just installed started (where systemd runs).
stop_service() {
    if [[ -d $root/run/systemd/system ]] && command -v systemctl >/dev/null; then
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        echo "stopping and disabling $1, which Debian's package started: the tests run their own" >&2
        "${sudo[@]}" systemctl disable --now "$1" >/dev/null 2>&1 || true
    fi
}
why="the dashboard tests"
[[ -x $root/usr/bin/chromium ]] || "$here/apt-install.sh" "$why" chromium
# PostgreSQL: asked for its version, wherever the tests look. Debian's package starts a server
# of its own (a cluster on :5432) where systemd runs; the tests start theirs, so when this script
# installed it, it stops and disables that service again.
postgres_found() {
    local d
    for d in "$(dirname "$(command -v initdb 2>/dev/null || echo /none/initdb)")" "$root"/usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] && "$d/postgres" --version >/dev/null 2>&1 && return 0
    done
    return 1
}
if ! postgres_found; then
    "$here/apt-install.sh" "the PostgreSQL store tests" postgresql
    stop_service postgresql.service
fi
if ! { command -v prometheus >/dev/null && command -v promtool >/dev/null; }; then
    "$here/apt-install.sh" --no-install-recommends "$why" prometheus
    stop_service prometheus.service
fi
