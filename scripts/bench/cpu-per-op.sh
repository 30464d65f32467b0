#!/usr/bin/env bash
# One loadgen target against a fresh local 3-node cluster, with what the
# servers spent on it: CPU per operation (from /proc/PID/stat around a window
# in the middle of the run), context switches per second, and each node's
# commit index, fsync count and forwarded writes from its metrics. Optionally
# records a `perf record -g` profile of the three nodes over the same window.
#
#   scripts/bench/cpu-per-op.sh BIN_DIR TARGET            # e.g. .build/release gc-keepalive
#   TO=leader scripts/bench/cpu-per-op.sh BIN_DIR TARGET  # only the leader's endpoint
#   PERF=/tmp/p.data scripts/bench/cpu-per-op.sh BIN_DIR gc-create
#
# TARGET is a loadgen.py target (gc-create, gc-release, gc-renew, gc-keepalive,
# gc-health). Same load as vs-etcd.sh: 2 processes, 64 calls in flight, 12
# measured seconds after the target's setup and a 1 s warm-up; the servers'
# CPU, context switches and the profile are sampled over seconds 2-8 of
# those 12 (`watched=` in loadgen's line is the servers' CPU over loadgen's
# whole window).
# Needs setup.sh once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "${1:?usage: cpu-per-op.sh BIN_DIR TARGET}" && pwd)
TARGET=${2:?usage: cpu-per-op.sh BIN_DIR TARGET}
export BENCH_HOME=$(cd "${BENCH_HOME:-.build-bench}" && pwd)
PY=$BENCH_HOME/venv/bin/python
st=$(mktemp -d)
trap '$PY "$HERE/cluster3.py" stop --dir "$st/gc" >/dev/null 2>&1 || true; rm -rf "$st"' EXIT

eps=$($PY "$HERE/cluster3.py" start --bin "$BIN" --dir "$st/gc")
sleep 3
ports() { python3 -c "import json,sys; print(' '.join(str(v[sys.argv[2]]) for v in json.load(open(sys.argv[1]))['ports'].values()))" "$st/gc/cluster.json" "$1"; }
if [ "${TO:-all}" = leader ]; then
    eps=""
    for m in $(ports metrics); do
        if curl -s "127.0.0.1:$m/metrics" | grep -q '^gc_raft_is_leader 1'; then
            grpc=$(python3 -c "import json,sys; print(next(v['grpc'] for v in json.load(open(sys.argv[1]))['ports'].values() if v['metrics'] == int(sys.argv[2])))" "$st/gc/cluster.json" "$m")
            eps="127.0.0.1:$grpc"
        fi
    done
    [ -n "$eps" ] || { echo "no leader after 3 s" >&2; exit 1; }
fi
pids=$(python3 -c "import json,sys; print(' '.join(str(p) for p in json.load(open(sys.argv[1]))['pids'].values()))" "$st/gc/cluster.json")
pid_list=$(echo $pids | tr ' ' ',')
cpu_ticks() { for p in $pids; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc; }
switches() { for p in $pids; do cat /proc/"$p"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; done | paste -sd+ | bc; }

$PY "$HERE/loadgen.py" --target "$TARGET" --endpoints "$eps" --to all --procs 2 --concurrency 64 \
    --duration 12 --pool 60000 --quiet-wait 30 --mark-start "$st/measuring" --watch-pids "$pid_list" >"$st/loadgen.out" 2>&1 &
loadgen=$!
# The window opens once the target's setup (gc-release creates its whole
# pool first) and warm-up are over: CPU is then spent on the measured operations.
for _ in $(seq 1 1800); do
    [ -e "$st/measuring" ] || ! kill -0 "$loadgen" 2>/dev/null && break
    sleep 0.1
done
[ -e "$st/measuring" ] || { cat "$st/loadgen.out" >&2; echo "the load generator never started measuring" >&2; exit 1; }
sleep 2
c0=$(cpu_ticks); w0=$(switches); t0=$(date +%s.%N)
if [ -n "${PERF:-}" ]; then
    perf record -F 999 -g -o "$PERF" -p "$pid_list" -- sleep 6 >/dev/null 2>&1
else
    sleep 6
fi
c1=$(cpu_ticks); w1=$(switches); t1=$(date +%s.%N)
wait $loadgen
line=$(grep 'ops/s' "$st/loadgen.out" | tail -1)
echo "$line"
# gc-release's pool (60,000 leases, more than vs-etcd.sh's 40,000 so that it
# lasts the 12 s up to about 4,500 releases/s) used up before second 8 would
# leave idle time in the sampled window.
grep -q 'ran out of work' "$st/loadgen.out" && echo "warning: $TARGET ran out of work before its 12 s ended; if the two CPU figures below differ, the sampled one is too low" >&2
ops=$(echo "$line" | sed -E 's/.*ops\/s= *([0-9.]+).*/\1/')
watched=$(echo "$line" | sed -E 's/.*watched= *([0-9.]+)cores.*/\1/')
python3 - "$c0" "$c1" "$w0" "$w1" "$t0" "$t1" "$ops" "$watched" <<'EOF'
import os, sys
c0, c1, w0, w1, t0, t1, ops, watched = map(float, sys.argv[1:])
hz = os.sysconf("SC_CLK_TCK"); secs = t1 - t0
cores = (c1 - c0) / hz / secs
print(f"servers: {cores:.2f} cores, {cores / ops * 1e6:.0f} us of CPU per op (at the run's {ops:.0f} ops/s), "
      f"{(w1 - w0) / secs:.0f} context switches/s; over loadgen's window: {watched / ops * 1e6:.0f} us per op")
EOF
for m in $(ports metrics); do
    curl -s "127.0.0.1:$m/metrics" | grep -E '^(gc_raft_is_leader|gc_raft_commit_index|gc_raft_storage_fsync_duration_seconds_count|gc_forwarded_writes_total) ' \
        | awk -v port="$m" 'BEGIN { printf "node (metrics :%s):", port } { printf " %s=%s", $1, $2 } END { print "" }'
done
[ -z "${PERF:-}" ] || echo "profile: $PERF (perf report -i $PERF --no-children --sort dso,sym)"
