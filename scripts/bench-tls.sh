#!/usr/bin/env bash
# What TLS costs: creates/s, p99 and server CPU per create of a local 3-node
# cluster (release build), plaintext versus mutual TLS on both ports with an
# authorization policy, alternating ROUNDS times (default 2) in one run.
#
#   scripts/bench-tls.sh                 # 64 in flight, 10 s per measurement
#   ROUNDS=3 SECONDS_PER_RUN=20 scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-2}"
seconds="${SECONDS_PER_RUN:-10}"
swift build -c release >/dev/null
bin="$(swift build -c release --show-bin-path)"
endpoints="127.0.0.1:50051,127.0.0.1:50061,127.0.0.1:50071"
ticks="$(getconf CLK_TCK)"

# CPU seconds (user + system) of the cluster's three nodes so far.
cluster_cpu() {
    local dir="$1" total=0 pid fields
    for n in n1 n2 n3; do
        pid="$(cat "$dir/$n/pid")"
        read -r -a fields <"/proc/$pid/stat"
        total=$((total + fields[13] + fields[14]))
    done
    echo "$total"
}

run() {
    local mode="$1" dir extra=()
    dir="$(mktemp -d /tmp/gc-bench-tls.XXXXXX)"
    if [ "$mode" = tls ]; then
        GC_CLUSTER_DIR="$dir" GC_LOG_LEVEL=warning GC_MAX_LEASES_PER_SERVICE=1000000 cluster/start.sh --tls >/dev/null 2>&1
        extra=(--cacert "$dir/pki/ca.pem" --cert "$dir/pki/admin.pem" --key "$dir/pki/admin.key")
    else
        GC_CLUSTER_DIR="$dir" GC_LOG_LEVEL=warning GC_MAX_LEASES_PER_SERVICE=1000000 cluster/start.sh >/dev/null 2>&1
    fi
    # Wait for a leader (the bench's first writes would otherwise wait for one).
    for _ in $(seq 1 100); do
        "$bin/gcctl" cluster status --endpoint 127.0.0.1:50051 "${extra[@]}" >/dev/null 2>&1 && break
        sleep 0.2
    done
    local before after out
    before="$(cluster_cpu "$dir")"
    out="$("$bin/gcctl" bench create --endpoint "$endpoints" --concurrency 64 --duration "$seconds" --warmup 1 \
        --output json "${extra[@]}")"
    after="$(cluster_cpu "$dir")"
    GC_CLUSTER_DIR="$dir" cluster/stop.sh >/dev/null 2>&1 || true
    rm -rf "$dir"
    python3 - "$mode" "$out" "$before" "$after" "$ticks" "$seconds" <<'PY'
import json, sys
mode, out, before, after, ticks, seconds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
overall = out["overall"]
rate = overall["opsPerSecond"]
p99 = (overall.get("latencyMs") or {}).get("p99", float("nan"))
failed = overall["failedOps"]
cpu = (after - before) / ticks
# CPU is measured over warm-up + measurement; ops over the measurement only.
per_op = cpu / (rate * (seconds + 1)) * 1e6 if rate else float("nan")
print(f"{mode:9s} creates/s {rate:7.0f}   p99 {p99:6.1f} ms   failed {failed}   server CPU {cpu:6.2f} s   ≈ {per_op:5.0f} µs per create (3 nodes)")
PY
}

echo "gcctl bench create, 64 in flight, ${seconds} s, 3-node cluster on loopback (release), $(date -u +%Y-%m-%dT%H:%MZ)"
for _ in $(seq 1 "$rounds"); do
    run plaintext
    run tls
done
