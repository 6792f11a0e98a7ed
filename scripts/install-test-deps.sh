#!/usr/bin/env bash
# What the dashboard tests need besides Rust: a real headless Chromium (Debian's `chromium`) for
# the web pages and the HTML report, and Prometheus with promtool (Debian's `prometheus`) for
# /metrics and the Grafana dashboards' queries. Installs them from Debian's packages when they
# are missing (as root, or through sudo).
set -euo pipefail
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "error: the dashboard tests need ${missing[*]} (Debian packages); install them" >&2
    exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing ${missing[*]} (needed by the dashboard tests)" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
