#!/usr/bin/env bash
# Artifact fan-out: how fast one model artifact reaches many agents, against a plain copy of the
# same file on this machine; then a download killed half-way and resumed. One Markdown table for
# the fan-out, one for the resume. For each size N: a fresh coordinator holding a SIZE MiB model
# artifact (uploaded before the agents connect), then REPS times: N `agent simulate --fetch-dir`
# agents with empty caches, the plain copy, and a run of one cell per agent (fan_out = "agent")
# that each agent starts once it has fetched, verified and installed the artifact through the
# real agent's cache. The best of the REPS is shown (the machine may be busy with other work);
# the RSS growth is the worst. See bench/fleet/README.md for the columns.
#
#   bench/fleet/fanout.sh [--sizes "1 4 8"] [--size-mib 1024] [--reps 3]
#
# Needs target/release/{coordinator,agent} (built when missing), the test models
# (models/scripts/fetch-test-models.sh), python3 and curl. The artifact, the caches and the plain
# copies live in a temporary folder on the disk of $TMPDIR (about (N + 2) x SIZE MiB at the
# largest N); everything it starts is stopped and that folder removed when it ends; raw output
# goes to bench/fleet/out/<date>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sizes="1 4 8"
size_mib=1024
reps=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes="${2?}"; shift 2 ;; # empty: the resume alone
    --size-mib) size_mib="${2:?}"; shift 2 ;;
    --reps) reps="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fanout.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/fleet/lib.sh
. "$here/lib.sh"
fleet_prepare
work="$(mktemp -d)"

pids=()
uploads=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -sf "$url/metrics" | awk -v m="$1" '$1 == m {printf "%.0f", $2}'; }
json() { python3 -c "import json,sys; r=json.load(open('$1')); print($2)"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The artifact: the tiny Qwen3 GGUF of the test models with random bytes appended up to SIZE MiB.
# `coordinator submit` checks a candle model by its GGUF magic, so it is accepted as a model;
# nothing loads it (the simulated agents run no model).
model="$work/fanout.gguf"
size=$((size_mib << 20))
base="$models/tiny-qwen3-gguf/tiny-qwen3.q8_0.gguf"
cp "$base" "$model"
head -c $((size - $(stat -c %s "$base"))) /dev/urandom >>"$model"
digest="sha256:$(sha256sum "$model" | cut -d' ' -f1)"
hex="${digest#sha256:}"
cat >"$out/spec.toml" <<EOF
name = "artifact fan-out"
[models.fanout]
candle = "$model"
[[benchmarks]]
model = "fanout"
workload = "generate"
context_lengths = [64]
max_new_tokens = 8
units = ["candle:cpu"]
[measure]
warmup = 0
min_iterations = 1
min_duration_s = 0
repetitions = 1
cooldown_s = 0
[targets]
fan_out = "agent"
EOF

# A fresh coordinator ($cpid, $url) holding the artifact: the spec is submitted once before any
# agent connects, which uploads the artifact and is then refused (no agent can run it).
start_coordinator() { # $1 label
  data="$work/data-$1"
  "$coordinator" serve --listen 127.0.0.1:0 --data-dir "$data" >"$out/coordinator-$1.log" 2>&1 &
  cpid=$!; pids+=("$cpid")
  for _ in $(seq 300); do [[ -s "$data/address" ]] && break; sleep 0.1; done
  url="http://$(cat "$data/address")"
  export ANEFLEET_COORDINATOR="$url" ANEFLEET_TOKEN="$(cat "$data/token")"
  local t0; t0=$(now)
  "$coordinator" submit "$out/spec.toml" >/dev/null 2>"$out/upload-$1.log" || true
  grep -q "$digest" "$out/upload-$1.log" || { echo "fanout.sh: the artifact was not uploaded (see $out/upload-$1.log)" >&2; exit 1; }
  uploads+=("$(printf '%.2f' "$(echo "$(now) - $t0" | bc -l)")")
}

stop_coordinator() {
  kill "$cpid"; wait "$cpid" 2>/dev/null || true
  rm -rf "$data"
}

simulate() { # $1 agents, $2 fetch dir, $3 label; sets $spid
  "$agent" simulate --agents "$1" --cell-s 1 --interval-ms 250 --fetch-dir "$2" >"$out/simulate-$3.json" 2>>"$out/simulate-$3.log" &
  spid=$!; pids+=("$spid")
}

wait_idle() { # $1 agents
  until [[ $("$coordinator" agents --format json | grep -c '"state": "idle"') -ge $1 ]]; do sleep 0.2; done
}

wait_offline() { # the agents of a stopped simulation are seen gone
  while [[ $("$coordinator" agents --format json | grep -c '"state": "idle"') -gt 0 ]]; do sleep 0.2; done
}

wait_run() { # $1 run id
  until "$coordinator" runs --format json | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['id']=='$1']; sys.exit(0 if r and r[0]['state'] in ('finished','failed','cancelled') else 1)"; do
    sleep 0.5
  done
}

# The plain copy: N concurrent `curl` of the same file from a static server on loopback into
# files on the same disk, each fsynced (the agent fsyncs before it verifies); MB/s in all. The
# copies are left in place: deleting them frees as much page cache as the next measurement
# writes (see below).
plain_copy() { # $1 copies
  local port t0 ps=()
  port=$(free_port)
  (cd "$work" && exec python3 -m http.server "$port" --bind 127.0.0.1 >"$out/http-server.log" 2>&1) &
  local hpid=$!; pids+=("$hpid")
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
  t0=$(now)
  for i in $(seq "$1"); do
    (curl -sf -o "$work/plain-$i" "http://127.0.0.1:$port/fanout.gguf" && sync "$work/plain-$i") &
    ps+=($!)
  done
  for p in "${ps[@]}"; do wait "$p"; done
  local t1; t1=$(now)
  kill "$hpid"; wait "$hpid" 2>/dev/null || true
  for i in $(seq "$1"); do [[ $(stat -c %s "$work/plain-$i") == "$size" ]] || { echo "fanout.sh: plain copy $i is short" >&2; exit 1; }; done
  echo "$1 * $size / ($t1 - $t0) / 1000000" | bc -l
}

# N x SIZE written to the page cache in 1 MiB writes, fsynced and deleted.
warm_up() { # $1 copies
  dd if=/dev/zero of="$work/warm" bs=1M count=$(($1 * size_mib)) conv=fsync status=none
  rm -f "$work/warm"
}

{
echo "| agents | MiB each | submit → all installed s | fan-out s | fetch p50 / max s | MB/s (all agents) | plain copy MB/s | ratio | coordinator RSS before / peak MiB | RSS growth MiB | served MiB | failed | unacked |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in $sizes; do
  start_coordinator "$n"
  best_rate=0; best_plain=0; growth=-1; failed=0; unacked=0
  for r in $(seq "$reps"); do
    label="$n-$r"; fetch="$work/fetch-$label"
    simulate "$n" "$fetch" "$label"
    wait_idle "$n"
    # Writing into the page cache costs this VM several times more after some writes than
    # after others (see the README), so both measurements start right after the same warm-up.
    warm_up "$n"
    plain=$(plain_copy "$n"); rm -f "$work"/plain-*
    warm_up "$n"
    (( $(echo "$plain > $best_plain" | bc -l) )) && best_plain=$plain
    served0=$(metric anefleet_artifact_served_bytes_total)
    rss0=$(rss_kib "$cpid"); echo "$rss0" >"$work/peak"
    (peak=0; while kill -0 "$cpid" 2>/dev/null; do r=$(rss_kib "$cpid" 2>/dev/null || echo 0); ((r > peak)) && peak=$r && echo "$peak" >"$work/peak"; sleep 0.05; done) &
    rpid=$!; pids+=("$rpid")
    t0=$(now)
    run=$("$coordinator" submit "$out/spec.toml" 2>>"$out/submit-$label.log" | tail -1)
    wait_run "$run"
    kill "$rpid"; wait "$rpid" 2>/dev/null || true
    peak=$(cat "$work/peak")
    served=$(( $(metric anefleet_artifact_served_bytes_total) - served0 ))
    "$coordinator" results "$run" --format json >"$out/results-$label.json"
    kill -INT "$spid"; wait "$spid" || true
    wait_offline
    rep="$out/simulate-$label.json"
    installed=$(find "$fetch" -name "$hex.verified" | wc -l)
    [[ $installed == "$n" ]] || echo "fanout.sh: $installed of $n agents installed the artifact" >&2
    [[ $served == $((n * size)) ]] || echo "fanout.sh: $served bytes served for $n agents" >&2
    rm -rf "$fetch"
    first=$(json "$rep" "r['first_fetch_unix_ms']"); last=$(json "$rep" "r['last_fetched_unix_ms']")
    fan_s=$(echo "($last - $first) / 1000" | bc -l)
    rate=$(echo "$n * $size / $fan_s / 1000000" | bc -l)
    failed=$((failed + $(json "$rep" "r['fetch_failed']"))); unacked=$((unacked + $(json "$rep" "r['unacked']")))
    if (( peak - rss0 > growth )); then growth=$((peak - rss0)); rss=$(printf '%.0f / %.0f' "$(echo "$rss0 / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)"); fi
    if (( $(echo "$rate > $best_rate" | bc -l) )); then
      best_rate=$rate; best_fan=$fan_s; best_served=$served
      best_all=$(echo "$last / 1000 - $t0" | bc -l)
      best_fetch=$(json "$rep" "'%.2f / %.2f' % (r['latency']['fetch']['p50_ms'] / 1000, r['latency']['fetch']['max_ms'] / 1000)")
    fi
  done
  stop_coordinator
  printf '| %s | %s | %.2f | %.2f | %s | %.0f | %.0f | %.2f | %s | %.0f | %.0f | %s | %s |\n' \
    "$n" "$size_mib" "$best_all" "$best_fan" "$best_fetch" "$best_rate" "$best_plain" "$(echo "$best_rate / $best_plain" | bc -l)" \
    "$rss" "$(echo "$growth / 1024" | bc -l)" "$(echo "$best_served / 1048576" | bc -l)" "$failed" "$unacked"
done
if [[ ${#uploads[@]} -gt 0 ]]; then
  echo; echo "Upload of the $size_mib MiB artifact to each fresh coordinator (\`coordinator submit\`, digest and send): ${uploads[*]} s"
fi
echo

# Resume: one agent, killed (SIGKILL) once half the artifact is on its disk, started again with
# the same cache; the coordinator counts what it sent in all.
start_coordinator resume
fetch="$work/fetch-resume"
part="$fetch/sim-00001/downloads/$hex.part"
simulate 1 "$fetch" resume
wait_idle 1
run=$("$coordinator" submit "$out/spec.toml" 2>>"$out/submit-resume.log" | tail -1)
until [[ -f "$part" && $(stat -c %s "$part") -ge $((size / 2)) ]]; do sleep 0.01; done
kill -KILL "$spid"; wait "$spid" 2>/dev/null || true
held=$(stat -c %s "$part")
sleep 1
before=$(metric anefleet_artifact_served_bytes_total)
simulate 1 "$fetch" resume
wait_run "$run"
served=$(metric anefleet_artifact_served_bytes_total)
kill -INT "$spid"; wait "$spid" || true
offset=$(sed 's/\x1b\[[0-9;]*m//g' "$out/simulate-resume.log" | grep "resuming download" | grep -o 'offset=[0-9]*' | tail -1 | cut -d= -f2)
[[ $(find "$fetch" -name "$hex.verified" | wc -l) == 1 ]] || echo "fanout.sh: the resumed download was not installed" >&2
stop_coordinator
echo "| MiB | held at the kill MiB | resumed from offset | served before the kill MiB | served in all MiB | re-sent MiB |"
echo "|---|---|---|---|---|---|"
printf '| %s | %.1f | %s | %.1f | %.1f | %.2f |\n' "$size_mib" "$(echo "$held / 1048576" | bc -l)" "${offset:-none}" \
  "$(echo "$before / 1048576" | bc -l)" "$(echo "$served / 1048576" | bc -l)" "$(echo "($served - $size) / 1048576" | bc -l)"
} | tee "$out/table.md"
