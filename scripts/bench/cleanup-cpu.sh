#!/usr/bin/env bash
# Mass-expiry cleanup throughput and the node's CPU per cleanup
# (BENCHMARKS.md, "Cleanup delivery during a mass expiry"): starts one node
# with the cleanup limits lifted, runs cleanup-bench against it, and reads
# the node's and the bench's CPU from /proc/PID/stat once a second while
# gc_cleanup_succeeded_total rises.
#
#   scripts/bench/cleanup-cpu.sh BIN_DIR [LEASES] [SINK]   # defaults 100000, http (or grpc)
#
# BIN_DIR needs gc-sidecar and cleanup-bench (swift build -c release). Uses
# ports 57051/57052/57090 and a temporary data directory.
set -euo pipefail
bin="$(cd "${1:?usage: $0 BIN_DIR [LEASES] [SINK]}" && pwd)"
leases="${2:-100000}"
sink="${3:-http}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/gc-cleanup-cpu.XXXXXX")"
node=""
sampler=""
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    [ -n "$node" ] && kill -TERM "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

GC_MIN_LEASE_DURATION=1 GC_CLEANUP_INTERVAL=1 GC_CLEANUP_GRACE_PERIOD=0 GC_MAX_LEASES_PER_SERVICE=1000000 \
GC_CLEANUP_ENDPOINT_RATE=0 GC_CLEANUP_ENDPOINT_CONCURRENCY=256 GC_LOG_LEVEL=warning \
GC_SERVER_PORT=57051 GC_RAFT_PORT=57052 GC_METRICS_PORT=57090 GC_DATA_DIR="$dir/data" \
    "$bin/gc-sidecar" > "$dir/node.log" 2>&1 &
node=$!

# One line a second: time, node CPU ticks, cleanups succeeded, bench CPU ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
(
    set +e +o pipefail   # the node may not answer yet: keep sampling
    while kill -0 "$node" 2>/dev/null; do
        succeeded="$(curl -s localhost:57090/metrics | awk '/^gc_cleanup_succeeded_total/ {s += $2} END {print s + 0}')"
        bench="$(pgrep -f "$bin/cleanup-bench" | head -1 || true)"
        echo "$(date +%s.%N) $(ticks "$node") $succeeded $([ -n "$bench" ] && ticks "$bench" || echo 0)"
        sleep 1
    done
) > "$dir/cpu.txt" &
sampler=$!

"$bin/cleanup-bench" --endpoint 127.0.0.1:57051 --sink "$sink" --leases "$leases" --idle-seconds 5
python3 - "$dir/cpu.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
hz = float(sys.argv[2])
rows = [tuple(float(x) for x in line.split()) for line in open(sys.argv[1]) if len(line.split()) == 4]
rising = [i for i in range(1, len(rows)) if rows[i][2] > rows[i - 1][2]]
if not rising:
    sys.exit("no cleanup succeeded while sampling")
a, b = rising[0] - 1, rising[-1]
seconds = rows[b][0] - rows[a][0]
node = (rows[b][1] - rows[a][1]) / hz
done = rows[b][2] - rows[a][2]
bench = (rows[b][3] - rows[a][3]) / hz
print(f"window {seconds:.1f} s: {done:.0f} cleanups ({done / seconds:.0f}/s), node CPU {node:.1f} s "
      f"({node / seconds:.2f} cores) = {node / done * 1e6:.0f} µs per cleanup; bench {bench / seconds:.2f} cores")
PY
