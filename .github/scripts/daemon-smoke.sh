#!/usr/bin/env bash
# The agent as a real system daemon: `agent install` (launchd on macOS, systemd on Linux) against
# a coordinator on loopback, the daemon connects with the token from its file (never from the
# service file), then `agent uninstall` while it measures a cell: the service manager's SIGTERM
# must let the cell finish and be reported `done` before the agent exits.
# Needs sudo, target/release/{agent,coordinator} and the test models (tiny-qwen3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="$PWD/target/release"
models="${ANEFLEET_TEST_MODELS:-$HOME/.cache/anefleet/test-models}"
work="$(mktemp -d)"
label=dev.anefleet.ci
name=ci-daemon
export ANEFLEET_COORDINATOR=http://127.0.0.1:7070
if [[ $(uname) == Darwin ]]; then
    service_file=/Library/LaunchDaemons/$label.plist
    daemon_log() { sudo cat "/Library/Logs/anefleet/$label.log" || true; }
else
    service_file=/etc/systemd/system/$label.service
    daemon_log() { sudo journalctl -u "$label" --no-pager || true; }
fi

"$bin/coordinator" serve --listen 127.0.0.1:7070 --data-dir "$work/fleet" >"$work/coordinator.log" 2>&1 &
coordinator=$!
finish() {
    status=$?
    if [[ $status -ne 0 ]]; then
        echo "--- coordinator log" >&2; cat "$work/coordinator.log" >&2
        echo "--- daemon log" >&2; daemon_log >&2
    fi
    sudo "$bin/agent" uninstall --label "$label" >/dev/null 2>&1 || true
    kill "$coordinator" 2>/dev/null || true
    exit "$status"
}
trap finish EXIT

# Polls a condition every 0.2 s until it holds or the deadline passes.
wait_for() { # what seconds command...
    local what=$1 secs=$2
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        if "$@"; then return 0; fi
        sleep 0.2
    done
    echo "timed out after ${secs}s waiting for $what" >&2
    return 1
}
client() { "$bin/coordinator" "$@" --token-file "$work/fleet/token"; }
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
agent_state() { client agents --format json | field "next((a['state'] for a in d if a['name'] == '$name'), 'absent')"; }
agent_online() { [[ ! $(agent_state) =~ ^(offline|absent)$ ]]; }
agent_offline() { [[ $(agent_state) == offline ]]; }
cell_state() { client results "$run" --format json | field "d['cells'][0]['state']"; }
cell_is() { [[ $(cell_state) == "$1" ]]; }
cell_over() { [[ ! $(cell_state) =~ ^(pending|assigned|running)$ ]]; }

wait_for "the coordinator to listen" 30 test -f "$work/fleet/address"
sudo "$bin/agent" --threads 2 install --coordinator "$ANEFLEET_COORDINATOR" --token-file "$work/fleet/token" \
    --name "$name" --tag ci --label "$label"
if sudo grep -qF "$(cat "$work/fleet/token")" "$service_file"; then
    echo "the token is written in $service_file" >&2
    exit 1
fi
wait_for "the daemon to connect" 60 agent_online

cat >"$work/spec.toml" <<SPEC
name = "a cell under a stopping daemon"
[models.tiny-qwen3]
candle = "$models/tiny-qwen3"
[[benchmarks]]
model = "tiny-qwen3"
workload = "generate"
context_lengths = [64]
max_new_tokens = 8
units = ["candle:cpu"]
[measure]
warmup = 0
min_iterations = 1
min_duration_s = 8
repetitions = 1
cooldown_s = 0
[targets]
tags = ["ci"]
SPEC
run="$(client submit "$work/spec.toml" | tail -n1)"
wait_for "the cell to run" 120 cell_is running
# SIGTERM from the service manager: the agent finishes the cell, reports it and exits.
sudo "$bin/agent" uninstall --label "$label"
wait_for "the cell to end" 120 cell_over
state="$(cell_state)"
if [[ $state != done ]]; then
    echo "the cell under the stopped daemon ended $state, not done" >&2
    exit 1
fi
wait_for "the daemon to go offline" 60 agent_offline
if [[ -e $service_file ]]; then
    echo "$service_file is still there after uninstall" >&2
    exit 1
fi
echo "daemon installed, connected, stopped with its cell done, removed"
