#!/usr/bin/env bash
# apt-install.sh [--no-install-recommends] WHY PACKAGE...: installs Debian packages the project's
# scripts found missing, as root or through sudo; where there is no apt-get (or, not being root,
# no sudo), says what is needed and why, and fails. Prints what it installs and why.
set -euo pipefail
opts=()
if [[ ${1:-} == --no-install-recommends ]]; then opts=(--no-install-recommends); shift; fi
why=$1
shift
[[ $# -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "error: $why needs $*; install them" >&2
    exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
        echo "error: $why needs $*: run this as root, or install them (apt-get install $*)" >&2
        exit 1
    fi
    sudo=(sudo)
fi
echo "installing $* ($why)" >&2
"${sudo[@]}" apt-get update -qq
# Through env: sudo would drop DEBIAN_FRONTEND from the environment, and debconf would ask.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${opts[@]+"${opts[@]}"} "$@" >/dev/null
