#!/usr/bin/env bash
# Generates the small real Core ML fixtures (make-coreml-fixtures.py) into
# $ANEFLEET_TEST_MODELS/coreml (default ~/.cache/anefleet/test-models/coreml): plain, stateful,
# multifunction and ranged-input .mlpackage files, an anemll-shaped split model, the inputs
# anemll's chat loop feeds it, and a compiled-layout .mlmodelc.
# coremltools (pinned, from PyPI) goes into its own virtual environment, never into yours:
# $ANEFLEET_COREMLTOOLS_VENV, default ~/.cache/anefleet/venv-coremltools. Uses python3.11 where
# there is one, else python3 (coremltools 9.0 supports 3.9 to 3.13; override with $PYTHON).
# Safe to run again: present fixtures of this version are kept. Prints the destination last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${ANEFLEET_TEST_MODELS:-$HOME/.cache/anefleet/test-models}"
dest="$root/coreml"
venv="${ANEFLEET_COREMLTOOLS_VENV:-$HOME/.cache/anefleet/venv-coremltools}"
python="${PYTHON:-$(command -v python3.11 || echo python3)}"
# Bump when the fixtures change: older ones are regenerated.
version="3"
pins=(coremltools==9.0 numpy==2.4.6 protobuf==7.36.2)

if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$version" ]; then
  echo "$dest"
  exit 0
fi

if ! "$venv/bin/python" -c 'import coremltools, sys; sys.exit(coremltools.__version__ != "9.0")' 2>/dev/null; then
  echo "installing ${pins[*]} into $venv" >&2
  "$python" -m venv "$venv"
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
