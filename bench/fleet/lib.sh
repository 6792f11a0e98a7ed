# Shared by the fleet benchmarks (sourced): the binaries, the test models and the output folder,
# and the quantiles of the coordinator's report ingest histogram.

# Sets coordinator, agent, models and out (bench/fleet/out/<date><$1>/, made), building the
# release binaries when missing; raises the open-files limit for thousands of sessions.
fleet_prepare() {
  local root here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  root="$(cd "$here/../.." && pwd)"
  [[ -x "$root/target/release/coordinator" && -x "$root/target/release/agent" ]] || (cd "$root" && cargo build --release -p agent -p coordinator)
  coordinator="$root/target/release/coordinator"
  agent="$root/target/release/agent"
  models="$("$root/models/scripts/fetch-test-models.sh" | tail -1)"
  out="$here/out/$(date -u +%Y%m%dT%H%M%SZ)${1:-}"
  mkdir -p "$out"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# "p50 / p99" in ms of anefleet_report_ingest_seconds for reports of kind $1, from a /metrics
# text on stdin, interpolated within the buckets as Prometheus's histogram_quantile() does.
ingest_p50_p99() {
  python3 -c '
import re, sys
kind = sys.argv[1]
b = []
for l in sys.stdin:
    m = re.match(r"anefleet_report_ingest_seconds_bucket\{kind=\"%s\",le=\"([^\"]+)\"\} (\d+)" % kind, l)
    if m:
        b.append((float(m.group(1)), int(m.group(2))))
def q(p):
    total, lo, below = b[-1][1], 0.0, 0
    for le, c in b:
        if c >= p * total:
            return 1000 * (lo if le == float("inf") else lo + (le - lo) * (p * total - below) / max(c - below, 1))
        lo, below = le, c
print("%.1f / %.1f" % (q(0.5), q(0.99)) if b and b[-1][1] else "-")' "$1"
}
