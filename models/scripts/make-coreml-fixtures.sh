#!/usr/bin/env bash
# Generates the small real Core ML fixtures (make-coreml-fixtures.py) into
# $ANEFLEET_TEST_MODELS/coreml (default ~/.cache/anefleet/test-models/coreml): plain, stateful,
# multifunction and ranged-input .mlpackage files, an anemll-shaped split model (2 FFN chunks) and
# the same model converted with 1 chunk (anemll-chunks1), the inputs
# anemll's chat loop feeds it, and a compiled-layout .mlmodelc.
# coremltools (pinned, from PyPI) goes into its own virtual environment, never into yours:
# $ANEFLEET_COREMLTOOLS_VENV, default ~/.cache/anefleet/venv-coremltools. Uses python3.11 where
# there is one, else python3 (coremltools 9.0 supports 3.9 to 3.13; override with $PYTHON).
# Installs from Debian's packages (scripts/apt-install.sh: as root, or through sudo) what that
# needs and is missing: python3 when there is no Python, and python3.<minor>-venv (the
# interpreter's own version) when the interpreter cannot make a virtual environment (Debian's
# Python has no `ensurepip` without it). A virtual environment left half-made by an earlier
# failed run is made again from scratch.
# Safe to run again: present fixtures of this version are kept. Prints the destination last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
apt_install="$here/../../scripts/apt-install.sh"
root="${ANEFLEET_TEST_MODELS:-$HOME/.cache/anefleet/test-models}"
dest="$root/coreml"
venv="${ANEFLEET_COREMLTOOLS_VENV:-$HOME/.cache/anefleet/venv-coremltools}"
python="${PYTHON:-$(command -v python3.11 || echo python3)}"
# Bump when the fixtures change: older ones are regenerated.
version="4"
pins=(coremltools==9.0 numpy==2.4.6 protobuf==7.36.2)

if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$version" ]; then
  echo "$dest"
  exit 0
fi

if ! "$venv/bin/python" -c 'import coremltools, sys; sys.exit(coremltools.__version__ != "9.0")' 2>/dev/null; then
  if ! command -v "$python" >/dev/null; then
    [ -z "${PYTHON:-}" ] || { echo "error: PYTHON=$PYTHON is not a command" >&2; exit 1; }
    "$apt_install" "the Core ML fixtures (coremltools runs in Python)" python3
  fi
  # Asks the interpreter itself: Debian's splits ensurepip, which venv needs, into python3.X-venv.
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    pkg=$("$python" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
    "$apt_install" "the Core ML fixtures' virtual environment for coremltools ($python has no ensurepip)" "$pkg"
    if ! "$python" -c 'import ensurepip, venv'; then
      echo "error: $python still cannot make a virtual environment (no ensurepip) after installing $pkg; set PYTHON to one that can" >&2
      exit 1
    fi
  fi
  echo "installing ${pins[*]} into $venv" >&2
  # --clear: what an earlier failed run left there (no pip, or an interpreter that is gone) goes.
  "$python" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "${pins[@]}"
fi

tmp="$root/.coreml.tmp.$$"
rm -rf "$tmp"
mkdir -p "$root"
trap 'rm -rf "$tmp"' EXIT
# coremltools reports its passes with progress bars and warns that it cannot run models off macOS.
"$venv/bin/python" "$here/make-coreml-fixtures.py" "$tmp" 2> >(grep -v -e 'pipeline' -e 'libcoremlpython' -e '^$' >&2)
echo "$version" > "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest"
