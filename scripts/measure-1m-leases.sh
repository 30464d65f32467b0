#!/usr/bin/env bash
# Manual measurement (not run in CI): one node holding a million leases
# (BENCHMARKS.md, "A million leases: snapshots and restart").
#
#   scripts/measure-1m-leases.sh [LEASES]        # default 1000000
#
# Builds gc-sidecar and gcctl in release (or uses GC_BIN_DIR), starts one
# node on a fresh data dir, then:
#   1. fills LEASES leases with `gcctl bench create` (reports the fill rate);
#   2. runs `gcctl bench create` for GC_MEASURE_SECONDS (default 40) on the
#      full node and reports create p50/p99/p99.9/max. With the default
#      GC_SNAPSHOT_THRESHOLD (10000 entries) several snapshots of the whole
#      state are taken inside that window; the script counts them from the
#      node's log and fails if there was none;
#   3. reports the node's RSS, kills it (kill -9) and times from the new
#      process's start to its first successful GetLease of a probe lease,
#      then reports RSS after the restart.
#
#   GC_BIN_DIR           directory with gc-sidecar and gcctl (skips the build)
#   GC_MEASURE_DIR       work directory (default ./gc-measure-1m; wiped first)
#   GC_SNAPSHOT_THRESHOLD, GC_MEASURE_SECONDS, GC_BENCH_CONCURRENCY (128)
set -euo pipefail
cd "$(dirname "$0")/.."
LEASES="${1:-1000000}"
MEASURE_SECONDS="${GC_MEASURE_SECONDS:-40}"
CONCURRENCY="${GC_BENCH_CONCURRENCY:-128}"
work="${GC_MEASURE_DIR:-$PWD/gc-measure-1m}"
port=50151
endpoint="127.0.0.1:$port"

if [ -n "${GC_BIN_DIR:-}" ]; then
    bin="$GC_BIN_DIR"
else
    swift build -c release --product gc-sidecar >/dev/null
    swift build -c release --product gcctl >/dev/null
    bin="$(swift build -c release --show-bin-path)"
fi
gcctl="$bin/gcctl"

rm -rf "$work"
mkdir -p "$work/data"
export GC_NODE_ID=m1 GC_DATA_DIR="$work/data" GC_SERVER_HOST=127.0.0.1 GC_SERVER_PORT=$port
export GC_METRICS_PORT=9191 GC_RAFT_PORT=0 GC_LOG_LEVEL="${GC_LOG_LEVEL:-info}"
export GC_MAX_LEASES_PER_SERVICE=10000000 GC_MAX_LEASES=100000000 GC_MAX_LEASE_DURATION=86400
export GC_SNAPSHOT_THRESHOLD="${GC_SNAPSHOT_THRESHOLD:-10000}"

pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; }
trap cleanup EXIT

start_node() {
    "$bin/gc-sidecar" >>"$work/node.log" 2>&1 &
    pid=$!
}
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
now() { date +%s.%N; }
active() {
    "$gcctl" health --endpoint "$endpoint" --output json 2>/dev/null \
        | python3 -c "import json,sys; print(int(json.load(sys.stdin).get('activeLeases', 0)))" 2>/dev/null || echo 0
}
wait_serving() { # polls until GetLease of $1 succeeds (bounded)
    local deadline=$((SECONDS + 300))
    until "$gcctl" lease get --endpoint "$endpoint" --timeout 1 "$1" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "node did not serve within 300 s" >&2; exit 1; }
        sleep 0.02
    done
}
bench_json() { # duration warmup
    "$gcctl" bench create --endpoint "$endpoint" --concurrency "$CONCURRENCY" --duration "$1" --warmup "$2" \
        --lease-duration 86400 --output json
}

start_node
deadline=$((SECONDS + 60))
until "$gcctl" health --endpoint "$endpoint" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "node did not start" >&2; exit 1; }
    sleep 0.1
done
probe=$("$gcctl" lease create --endpoint "$endpoint" --object-id measure-probe --service-id probe --duration 86400 --output json \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['leaseId'])")
echo "$probe" >"$work/probe-lease"  # for scripts/measure-kept-1m.sh

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "snapshot threshold: $GC_SNAPSHOT_THRESHOLD entries"
fill_started=$(now)
while [ "$(active)" -lt "$LEASES" ]; do
    bench_json 20 0 >/dev/null
done
filled=$(active)
fill_seconds=$(echo "$(now) - $fill_started" | bc)
echo "fill: $filled leases in $fill_seconds s ($(echo "$filled / $fill_seconds" | bc) leases/s); RSS $(rss_mib) MiB"

snapshots_before=$(grep -c "snapshot taken" "$work/node.log" || true)
bench_json "$MEASURE_SECONDS" 2 >"$work/measure.json"
snapshots_after=$(grep -c "snapshot taken" "$work/node.log" || true)
taken=$((snapshots_after - snapshots_before))
python3 - "$work/measure.json" "$MEASURE_SECONDS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = d.get("overall") or d
lat = f["latencyMs"]
print(f"create on a full node ({sys.argv[2]} s): {f['opsPerSecond']:.0f}/s, errors {f.get('errors', {})}; "
      f"latency ms p50 {lat['p50']:.2f} p99 {lat['p99']:.2f} p99.9 {lat['p999']:.2f} max {lat['max']:.2f}")
EOF
echo "snapshots taken during the measured window: $taken"
grep "snapshot taken" "$work/node.log" | tail -n "$taken" | sed -e 's/^/  /' | tail -n 3
[ "$taken" -gt 0 ] || { echo "no snapshot was taken during the window: raise GC_MEASURE_SECONDS or lower GC_SNAPSHOT_THRESHOLD" >&2; exit 1; }
echo "RSS before restart: $(rss_mib) MiB; data dir $(du -sh "$work/data" | cut -f1)"

kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
started=$(now)
start_node
wait_serving "$probe"
echo "restart to serving (process start to first GetLease): $(echo "$(now) - $started" | bc) s; RSS $(rss_mib) MiB"
sleep 5
echo "RSS 5 s after restart: $(rss_mib) MiB"
