#!/usr/bin/env bash
# Manual measurement (not run in CI): restart time and create latency while
# snapshots are taken, on a data directory kept from scripts/measure-1m-leases.sh
# (BENCHMARKS.md, "Restart and snapshot stalls"), without another fill.
#
#   scripts/measure-kept-1m.sh KEPT_DIR [restarts]     # KEPT_DIR = that script's GC_MEASURE_DIR
#
# Each try copies KEPT_DIR/data afresh, starts one node on it with the fill
# script's environment, and times process start to the first successful
# GetLease of the probe lease. The last try then runs `gcctl bench create`:
# GC_SLICES slices of GC_SLICE_SECONDS (default 10 x 4 s, to see when the worst
# latency happens), or one window of GC_MEASURE_SECONDS if GC_SLICES=0, at
# GC_BENCH_CONCURRENCY in flight (128), and prints the node's snapshot lines.
#
#   GC_BIN_DIR   directory with gc-sidecar and gcctl (default .build/release)
#   GC_SNAPSHOT_THRESHOLD (10000), GC_WORK_DIR (default /tmp/gc-measure-kept)
set -uo pipefail
cd "$(dirname "$0")/.."
kept="${1:?usage: scripts/measure-kept-1m.sh KEPT_DIR [restarts]}"
restarts="${2:-3}"
bin="${GC_BIN_DIR:-.build/release}"
gcctl="$bin/gcctl"
work="${GC_WORK_DIR:-/tmp/gc-measure-kept}"
concurrency="${GC_BENCH_CONCURRENCY:-128}"
slices="${GC_SLICES:-10}"
port=50151
endpoint="127.0.0.1:$port"
[ -d "$kept/data" ] || { echo "$kept/data is not a data directory kept by measure-1m-leases.sh" >&2; exit 1; }

export GC_NODE_ID=m1 GC_DATA_DIR="$work/data" GC_SERVER_HOST=127.0.0.1 GC_SERVER_PORT=$port
export GC_METRICS_PORT=9191 GC_RAFT_PORT=0 GC_LOG_LEVEL="${GC_LOG_LEVEL:-info}"
export GC_MAX_LEASES_PER_SERVICE=10000000 GC_MAX_LEASES=100000000 GC_MAX_LEASE_DURATION=86400
export GC_SNAPSHOT_THRESHOLD="${GC_SNAPSHOT_THRESHOLD:-10000}"

pid=""
stop() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; pid=""; }
trap stop EXIT
now() { date +%s.%N; }

probe="$(cat "$kept/probe-lease" 2>/dev/null || true)"
for try in $(seq 1 "$restarts"); do
    rm -rf "$work"; mkdir -p "$work"; cp -r "$kept/data" "$work/data"; sync
    started=$(now)
    "$bin/gc-sidecar" >"$work/node.log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + 300))
    if [ -z "$probe" ]; then
        until "$gcctl" health --endpoint "$endpoint" >/dev/null 2>&1; do
            [ $SECONDS -lt $deadline ] || { echo "node did not start" >&2; exit 1; }
            sleep 0.02
        done
        probe=$("$gcctl" lease list --endpoint "$endpoint" --object-id measure-probe --output json \
            | python3 -c "import json,sys; print(json.load(sys.stdin)['leases'][0]['leaseId'])")
        echo "(probe lease $probe found; this try is not timed)"
        stop
        continue
    fi
    until "$gcctl" lease get --endpoint "$endpoint" --timeout 1 "$probe" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "node did not serve within 300 s" >&2; exit 1; }
        sleep 0.02
    done
    echo "restart $try: serving after $(echo "$(now) - $started" | bc) s; $(grep -o 'decode_ms=[0-9]*\|load_ms=[0-9]*' "$work/node.log" | tr '\n' ' ')"
    [ "$try" -lt "$restarts" ] && stop
done

report() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); f = d.get("overall") or d; l = f["latencyMs"]
print(f"{sys.argv[2]} {f['opsPerSecond']:.0f}/s errors {f.get('errors', {})} p50 {l['p50']:.1f} p99 {l['p99']:.1f} p99.9 {l['p999']:.1f} max {l['max']:.1f}")
PY
}
bench() { # duration warmup
    "$gcctl" bench create --endpoint "$endpoint" --concurrency "$concurrency" --duration "$1" --warmup "$2" \
        --lease-duration 86400 --output json >"$work/bench.json"
}
echo "create at $concurrency in flight, snapshot threshold $GC_SNAPSHOT_THRESHOLD entries:"
if [ "$slices" -gt 0 ]; then
    for _ in $(seq 1 "$slices"); do
        at=$(date +%H:%M:%S)
        bench "${GC_SLICE_SECONDS:-4}" 0 && report "$work/bench.json" "  $at"
    done
else
    bench "${GC_MEASURE_SECONDS:-40}" 2 && report "$work/bench.json" "  window"
fi
echo "snapshots taken:"
grep "snapshot taken" "$work/node.log" | sed -e 's/^/  /' || echo "  none"
echo "RSS at the end: $(awk '/VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")"
