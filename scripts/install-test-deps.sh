#!/usr/bin/env bash
# What the dashboard tests need besides Rust: a real headless Chromium (Debian's `chromium`) for
# the web pages and the HTML report, and Prometheus with promtool (Debian's `prometheus`) for
# /metrics and the Grafana dashboards' queries. Installs them from Debian's packages when they
# are missing (as root, or through sudo).
set -euo pipefail
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
exec "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "the dashboard tests" ${missing[@]+"${missing[@]}"}
