#!/usr/bin/env bash
# Fleet scale: a real coordinator against `agent simulate` fleets of growing size, one Markdown
# table. For each size N: N simulated agents connect (idle figures), then a run of CELLS cells
# (--cells, default 4 per agent) is submitted and runs to the end with every agent streaming an
# interval histogram each second (busy figures). See bench/fleet/README.md for the columns.
#
#   bench/fleet/run.sh [--sizes "10 100 300 1000"] [--cells-per-agent N] [--cell-s S] [--cell-spread F]
#
# Needs target/release/{coordinator,agent} (built when missing) and the test models
# (models/scripts/fetch-test-models.sh). Everything it starts is stopped when it ends; raw
# reports go to bench/fleet/out/<date>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sizes="10 100 300 1000"
per_agent=4
cell_s=5
cell_spread=0.5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes="${2:?}"; shift 2 ;;
    --cells-per-agent) per_agent="${2:?}"; shift 2 ;;
    --cell-s) cell_s="${2:?}"; shift 2 ;;
    --cell-spread) cell_spread="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/fleet/lib.sh
. "$here/lib.sh"
fleet_prepare
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# CPU seconds (user + system) of a process, from /proc/PID/stat.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
disk_mb() { awk '/^write_bytes/ {print $2 / 1e6}' "/proc/$1/io"; }
# The store's commits so far (one fsync each), from /metrics.
commits() { curl -sf "$url/metrics" | awk '/^anefleet_store_commits_total/ {print $2}'; }

spec() { # $1 cells (rounded up to a multiple of 5): encode cells over context lengths x 5 batch sizes, any agent
  local contexts=$(( ($1 + 4) / 5 )) first=16
  echo "name = \"fleet scale\""
  echo "[models.minilm]"
  echo "candle = \"$models/all-minilm-l6-v2\""
  while (( contexts > 0 )); do
    local n=$(( contexts < 50 ? contexts : 50 ))
    echo "[[benchmarks]]"
    echo "model = \"minilm\""
    echo "workload = \"encode\""
    echo "context_lengths = [$(seq -s, "$first" $((first + n - 1)))]"
    echo "batch_sizes = [1, 2, 3, 4, 5]"
    echo "units = [\"candle:cpu\"]"
    first=$((first + n)); contexts=$((contexts - n))
  done
  printf '[measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = 0\nrepetitions = 1\ncooldown_s = 0\n[targets]\nfan_out = "any"\n'
}

{
echo "| agents | cells | idle CPU (cores) | idle RSS MiB | busy CPU (cores) | busy RSS MiB | fds | commits/s | disk MB/s | run s | assign p50/p99 ms | result ack p50/p99 ms | interval ack p50/p99 ms | result ingest p50/p99 ms | interval ingest p50/p99 ms | submit s | results json s | run page s | /metrics s | unacked |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in $sizes; do
  data="$(mktemp -d)"
  "$coordinator" serve --listen 127.0.0.1:0 --data-dir "$data" >"$out/coordinator-$n.log" 2>&1 &
  cpid=$!; pids+=("$cpid")
  for _ in $(seq 300); do [[ -s "$data/address" ]] && break; sleep 0.1; done
  url="http://$(cat "$data/address")"
  export ANEFLEET_COORDINATOR="$url" ANEFLEET_TOKEN="$(cat "$data/token")"
  "$agent" simulate --agents "$n" --cell-s "$cell_s" --cell-spread "$cell_spread" --interval-ms 1000 --latency-ms 20 >"$out/simulate-$n.json" 2>"$out/simulate-$n.log" &
  spid=$!; pids+=("$spid")
  until [[ $("$coordinator" agents --format json | grep -c '"state": "idle"') -ge $n ]]; do sleep 0.5; done
  c0=$(cpu_s "$cpid"); t0=$(date +%s.%N); sleep 10
  idle_cpu=$(echo "($(cpu_s "$cpid") - $c0) / ($(date +%s.%N) - $t0)" | bc -l); idle_rss=$(rss_mib "$cpid")
  cells=$(( (n * per_agent + 4) / 5 * 5 ))
  spec "$cells" >"$out/spec-$n.toml"
  c0=$(cpu_s "$cpid"); t0=$(date +%s.%N)
  run=$("$coordinator" submit "$out/spec-$n.toml" 2>>"$out/submit-$n.log" | tail -1)
  t1=$(date +%s.%N); k0=$(commits); w0=$(disk_mb "$cpid")
  peak_fds=0
  until "$coordinator" runs --format json | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['id']=='$run']; sys.exit(0 if r and r[0]['state'] in ('finished','failed') else 1)"; do
    f=$(fds "$cpid"); (( f > peak_fds )) && peak_fds=$f; sleep 1
  done
  t2=$(date +%s.%N)
  busy_cpu=$(echo "($(cpu_s "$cpid") - $c0) / ($t2 - $t0)" | bc -l); busy_rss=$(rss_mib "$cpid")
  disk_rate=$(echo "($(disk_mb "$cpid") - $w0) / ($t2 - $t1)" | bc -l)
  r0=$(date +%s.%N); "$coordinator" results "$run" --format json >"$out/results-$n.json"; r1=$(date +%s.%N)
  p0=$(date +%s.%N); curl -sf "$url/runs/$run" >/dev/null; p1=$(date +%s.%N)
  m0=$(date +%s.%N); curl -sf "$url/metrics" >/dev/null; m1=$(date +%s.%N)
  # After the timings above: a scrape builds the last run's document, which the run page reuses.
  curl -sf "$url/metrics" >"$out/metrics-$n.txt"
  commit_rate=$(echo "($(commits) - $k0) / ($t2 - $t1)" | bc -l)
  kill -INT "$spid"; wait "$spid" || true
  rep="$out/simulate-$n.json"
  fig() { python3 -c "import json,sys; l=json.load(open('$rep'))['latency'].get('$1'); print('%.1f / %.1f' % (l['p50_ms'], l['p99_ms']) if l else '–')"; }
  ingest() { ingest_p50_p99 "$1" <"$out/metrics-$n.txt"; }
  unacked=$(python3 -c "import json; print(json.load(open('$rep'))['unacked'])")
  printf '| %s | %s | %.3f | %s | %.3f | %s | %s | %.0f | %.1f | %.1f | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s |\n' \
    "$n" "$cells" "$idle_cpu" "$idle_rss" "$busy_cpu" "$busy_rss" "$peak_fds" "$commit_rate" "$disk_rate" "$(echo "$t2 - $t1" | bc -l)" \
    "$(fig assign)" "$(fig finished)" "$(fig interval)" "$(ingest finished)" "$(ingest interval)" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$r1 - $r0" | bc -l)" \
    "$(echo "$p1 - $p0" | bc -l)" "$(echo "$m1 - $m0" | bc -l)" "$unacked"
  kill "$cpid"; wait "$cpid" 2>/dev/null || true
  rm -rf "$data"
done
} | tee "$out/table.md"
