#!/usr/bin/env bash
# Replicas: one coordinator against two on the same PostgreSQL, the same workload, one Markdown
# table. A PostgreSQL of its own is made in a temporary directory (initdb; run as nobody when
# this runs as root) and a database per row; AGENTS simulated agents (spread over the replicas in
# turn) run a run of CELLS cells that each measure CELL_S seconds with an interval each second.
#
#   bench/fleet/replicas.sh [--agents N] [--cells N] [--cell-s S]
#
# Needs target/release/{coordinator,agent} (built when missing), the test models
# (models/scripts/fetch-test-models.sh) and PostgreSQL (scripts/install-test-deps.sh). Everything
# it starts is stopped when it ends; raw reports go to bench/fleet/out/<date>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
agents=300
cells=1500
cell_s=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agents) agents="${2:?}"; shift 2 ;;
    --cells) cells="${2:?}"; shift 2 ;;
    --cell-s) cell_s="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "replicas.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/fleet/lib.sh
. "$here/lib.sh"
fleet_prepare -replicas

bin=""
for d in "$(dirname "$(command -v initdb 2>/dev/null || echo /none/initdb)")" /usr/lib/postgresql/*/bin; do
  [[ -x $d/initdb && -x $d/postgres ]] && bin=$d && break
done
[[ -n $bin ]] || { echo "replicas.sh: no PostgreSQL (run scripts/install-test-deps.sh)" >&2; exit 1; }
psql="$bin/psql"; [[ -x $psql ]] || psql=psql
pg="$(mktemp -d)"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then chown nobody:nogroup "$pg"; as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bin/initdb" -D "$pg/data" -U anefleet --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
# Durable as in production: fsync on, synchronous_commit on.
"${as_pg[@]}" "$bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200" start >/dev/null

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${as_pg[@]}" "$bin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg"
}
trap cleanup EXIT

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
contexts=$(( (cells + 4) / 5 )); cells=$(( contexts * 5 ))
spec="$out/spec.toml"
{
  echo "name = \"replicas\""; echo "[models.minilm]"; echo "candle = \"$models/all-minilm-l6-v2\""
  first=16; left=$contexts
  while (( left > 0 )); do
    n=$(( left < 50 ? left : 50 ))
    printf '[[benchmarks]]\nmodel = "minilm"\nworkload = "encode"\ncontext_lengths = [%s]\nbatch_sizes = [1, 2, 3, 4, 5]\nunits = ["candle:cpu"]\n' "$(seq -s, "$first" $((first + n - 1)))"
    first=$((first + n)); left=$((left - n))
  done
  printf '[measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = 0\nrepetitions = 1\ncooldown_s = 0\n[targets]\nfan_out = "any"\n'
} >"$spec"

echo "| replicas | agents | cells | run s | cells/s | coordinators' CPU (cores) | result ingest p50/p99 ms (each replica) | unacked |"
echo "|---|---|---|---|---|---|---|---|"
for r in 1 2; do
  db="r$r"
  "$psql" -X -q -h 127.0.0.1 -p "$port" -U anefleet -d postgres -c "CREATE DATABASE $db" >/dev/null
  url="postgres://anefleet@127.0.0.1:$port/$db"
  shared="$(mktemp -d)"; urls=(); cps=(); token=""
  for i in $(seq "$r"); do
    data="$shared/coordinator-$i"
    extra=(); [[ -n $token ]] && extra=(--token-file "$token")
    "$coordinator" serve --listen 127.0.0.1:0 --data-dir "$data" --store "$url" --artifacts-dir "$shared" "${extra[@]}" >"$out/coordinator-$r-$i.log" 2>&1 &
    cps+=($!); pids+=($!)
    for _ in $(seq 300); do [[ -s "$data/address" ]] && break; sleep 0.1; done
    urls+=("http://$(cat "$data/address")")
    [[ -n $token ]] || token="$data/token"
  done
  list="$(IFS=,; echo "${urls[*]}")"
  export ANEFLEET_COORDINATOR="$list" ANEFLEET_TOKEN="$(cat "$token")"
  "$agent" simulate --agents "$agents" --cell-s "$cell_s" --cell-spread 0.5 --interval-ms 1000 --latency-ms 20 \
    >"$out/simulate-$r.json" 2>"$out/simulate-$r.log" &
  spid=$!; pids+=("$spid")
  until [[ $("$coordinator" agents --format json | grep -c '"state": "idle"') -ge $agents ]]; do sleep 0.5; done
  c0=0; for p in "${cps[@]}"; do c0=$(echo "$c0 + $(cpu_s "$p")" | bc -l); done
  t0=$(date +%s.%N)
  run=$("$coordinator" submit "$spec" 2>>"$out/submit-$r.log" | tail -1)
  until "$coordinator" runs --format json | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['id']=='$run']; sys.exit(0 if r and r[0]['state'] in ('finished','failed') else 1)"; do sleep 0.5; done
  t1=$(date +%s.%N)
  c1=0; for p in "${cps[@]}"; do c1=$(echo "$c1 + $(cpu_s "$p")" | bc -l); done
  ingest=()
  for u in "${urls[@]}"; do
    ingest+=("$(curl -sf "$u/metrics" | ingest_p50_p99 finished)")
  done
  kill -INT "$spid"; wait "$spid" || true
  unacked=$(python3 -c "import json; print(json.load(open('$out/simulate-$r.json'))['unacked'])")
  secs=$(echo "$t1 - $t0" | bc -l)
  printf '| %s | %s | %s | %.1f | %.0f | %.2f | %s | %s |\n' "$r" "$agents" "$cells" "$secs" "$(echo "$cells / $secs" | bc -l)" \
    "$(echo "($c1 - $c0) / $secs" | bc -l)" "$(IFS=';'; echo "${ingest[*]}" | sed 's/;/ · /g')" "$unacked"
  for p in "${cps[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$shared"
done | tee "$out/table.md"
