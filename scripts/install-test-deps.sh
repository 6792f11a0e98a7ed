#!/usr/bin/env bash
# What the dashboard tests need besides Rust: a real headless Chromium (Debian's `chromium`, at
# /usr/bin/chromium, where coordinator/tests/common/browser.rs starts it) for the web pages and
# the HTML report, and Prometheus with promtool (Debian's `prometheus`, found on PATH as the
# tests run them) for /metrics and the Grafana dashboards' queries. Installs them from Debian's
# packages when they are missing (as root, or through sudo): chromium, and prometheus without
# its recommended prometheus-node-exporter. Debian's prometheus package starts a Prometheus
# service (on :9090, all interfaces) where systemd runs; the tests start their own, so when this
# script installed it, it stops and disables that service again.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
why="the dashboard tests"
[[ -x /usr/bin/chromium ]] || "$here/apt-install.sh" "$why" chromium
if ! { command -v prometheus >/dev/null && command -v promtool >/dev/null; }; then
    "$here/apt-install.sh" --no-install-recommends "$why" prometheus
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        echo "stopping and disabling prometheus.service, which Debian's package started: the tests run their own" >&2
        "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
fi
