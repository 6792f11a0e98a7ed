#!/usr/bin/env bash
# Peer comparison: the same models, token counts and thread count through PyTorch,
# llama-cpp-python and anefleet's own `agent bench` (candle:cpu, llamacpp:cpu), as one Markdown
# table. See bench/peers/README.md.
#
#   bench/peers/run.sh [--threads N] [--runs N] [--agent PATH] [--models DIR] [--setup-only]
#
#   --threads N    inference threads on every side (default: this machine's cores; never more)
#   --runs N       timed runs per figure on the Python side, and min_iterations per repetition of
#                  every agent cell (default 20; medians of fewer than 10 are flagged)
#   --agent PATH   the agent binary (default: target/release/agent, built when missing)
#   --models DIR   the test models (default: $ANEFLEET_TEST_MODELS or ~/.cache/anefleet/test-models,
#                  fetched with models/scripts/fetch-test-models.sh when missing)
#   --setup-only   create or update bench/peers/.venv and stop
#
# Raw results (every JSON document and the table) go to bench/peers/out/<date>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cores="$(nproc)"
threads="$cores"
runs=20
agent="$root/target/release/agent"
models="${ANEFLEET_TEST_MODELS:-$HOME/.cache/anefleet/test-models}"
setup_only=0
python="${PYTHON:-python3}"
venv="$here/.venv"

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) positive "$1" "${2-}"; threads="$2"; shift 2 ;;
    --runs) positive "$1" "${2-}"; runs="$2"; shift 2 ;;
    --agent) agent="$(cd "$(dirname "${2:?--agent needs a path}")" && pwd)/$(basename "$2")"; shift 2 ;;
    --models) models="${2:?--models needs a folder}"; shift 2 ;;
    --setup-only) setup_only=1; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

if (( threads > cores )); then
  echo "run.sh: --threads $threads is more than this machine's $cores cores (that slows every side badly, candle most)" >&2
  exit 2
fi
(( runs >= 10 )) || echo "run.sh: note: --runs $runs: medians of fewer than 10 runs are for trying the script out, not for quoting" >&2

# --- the peers' virtual environment (idempotent: reinstalls only when requirements.txt changes) ---
setup_venv() {
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "== setting up $venv (torch is about 5.6 GB; llama-cpp-python compiles llama.cpp, minutes)" >&2
  command -v cmake >/dev/null ||
    echo "   no cmake on PATH: llama-cpp-python's build backend fetches the cmake wheel from PyPI instead" >&2
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  CMAKE_BUILD_PARALLEL_LEVEL="$cores" "$venv/bin/python" -m pip install --disable-pip-version-check \
    -r "$here/requirements.txt" >&2
  echo "$want" >"$stamp"
}
setup_venv
(( setup_only == 0 )) || exit 0

# --- the agent and the models ---
if [[ ! -x "$agent" ]]; then
  echo "== $agent is missing: cargo build --release -p agent" >&2
  (cd "$root" && cargo build --release -p agent) >&2
fi
minilm="$models/all-minilm-l6-v2"
gguf="$models/smollm2-135m-instruct.q4_1.gguf"
if [[ ! -f "$minilm/model.safetensors" || ! -f "$gguf" ]]; then
  echo "== fetching the test models into $models" >&2
  ANEFLEET_TEST_MODELS="$models" "$root/models/scripts/fetch-test-models.sh" >&2
fi
models="$(cd "$models" && pwd)"

out="$here/out/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
echo "== results in $out" >&2

"$agent" --threads "$threads" info >"$out/agent-info.json"
# Anything else running skews every figure, the OpenMP-based peers (PyTorch, llama.cpp) most:
# a worker descheduled at one of their many barriers per forward pass stalls the others.
read -r load1 _ </proc/loadavg
echo "$load1" >"$out/loadavg-start"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "== note: load average $load1 before the first figure: something else is running; figures will be noisy" >&2
fi

# Specs: {models} is the test-model folder, {runs} the iterations per repetition.
render() { sed -e "s|{models}|$models|g" -e "s|{runs}|$runs|g" "$here/specs/$1" >"$out/$1"; }

# --- the Python peers (one at a time, never beside another benchmark) ---
export PYTHONDONTWRITEBYTECODE=1
peer() { # script output
  echo "== $1" >&2
  "$venv/bin/python" "$here/$1" --threads "$threads" --runs "$runs" --models "$models" --repo "$root" >"$out/$2"
}
peer torch_minilm.py torch.json
peer llamacpp_smollm2.py llama-cpp-python.json

# --- anefleet: agent bench, candle:cpu then llamacpp:cpu when this agent has it ---
bench() { # spec output
  render "$1"
  echo "== agent --threads $threads bench $1" >&2
  local rc=0
  "$agent" --threads "$threads" bench "$out/$1" --format json >"$out/$2" || rc=$?
  (( rc == 0 )) || echo "   agent bench exited $rc (failed cells are shown in the table)" >&2
}
bench candle.toml agent-candle.json
if "$venv/bin/python" -c 'import json,sys; sys.exit(0 if "llamacpp:cpu" in json.load(open(sys.argv[1]))["units"] else 1)' \
  "$out/agent-info.json"; then
  bench llamacpp.toml agent-llamacpp.json
else
  echo "== skipping llamacpp:cpu: this agent's units are $(tr -d '\n ' <"$out/agent-info.json" | grep -o '"units":\[[^]]*\]')" >&2
fi

# --- the table ---
command_line="bench/peers/run.sh --threads $threads --runs $runs"
"$venv/bin/python" "$here/table.py" "$out" --command "$command_line" | tee "$out/table.md"
