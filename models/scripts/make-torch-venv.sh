#!/usr/bin/env bash
# Makes the virtual environment the `torch` backend's tests run its worker in: the pins of
# agent/python/requirements.txt (torch, transformers) from PyPI into $ANEFLEET_TORCH_VENV, default
# ~/.cache/anefleet/venv-torch, never into your Python. About 5.6 GB: made once, then reused (the
# check asks the venv's own Python for the pinned versions). Uses $PYTHON, else python3; installs
# python3.<minor>-venv from Debian's packages (scripts/apt-install.sh) when that Python cannot make
# a virtual environment. Prints the venv's Python last: point the agent at it with
# `--python` or ANEFLEET_PYTHON.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
apt_install="$root/scripts/apt-install.sh"
requirements="$root/agent/python/requirements.txt"
venv="${ANEFLEET_TORCH_VENV:-$HOME/.cache/anefleet/venv-torch}"
python="${PYTHON:-python3}"
torch_pin="$(sed -n 's/^torch==//p' "$requirements")"
transformers_pin="$(sed -n 's/^transformers==//p' "$requirements")"

has_pins() {
  "$venv/bin/python" - "$torch_pin" "$transformers_pin" 2>/dev/null <<'PY'
import sys, torch, transformers
sys.exit(torch.__version__.split("+")[0] != sys.argv[1] or transformers.__version__ != sys.argv[2])
PY
}

if ! has_pins; then
  command -v "$python" >/dev/null || { echo "error: $python is not a command (set PYTHON)" >&2; exit 1; }
  # Asks the interpreter itself: Debian's splits ensurepip, which venv needs, into python3.X-venv.
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    pkg=$("$python" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
    "$apt_install" "the torch backend's virtual environment ($python has no ensurepip)" "$pkg"
  fi
  echo "installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv (about 5.6 GB, once)" >&2
  "$python" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$requirements"
  has_pins || { echo "error: $venv still lacks torch==$torch_pin and transformers==$transformers_pin" >&2; exit 1; }
fi
echo "$venv/bin/python"
