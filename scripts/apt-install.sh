#!/usr/bin/env bash
# apt-install.sh WHY PACKAGE...: installs Debian packages the project's scripts found missing,
# as root or through sudo; where there is no apt-get, says what is needed and why, and fails.
set -euo pipefail
why=$1
shift
[[ $# -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "error: $why needs $*; install them" >&2
    exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing $* ($why)" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
