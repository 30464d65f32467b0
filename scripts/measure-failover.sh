#!/usr/bin/env bash
# Measures leader failover on a local release cluster (BENCHMARKS.md,
# "Leader failover"): kill -9 the leader, time until a write through a
# surviving node is acknowledged, restart the old leader, repeat.
#
#   scripts/measure-failover.sh [ROUNDS]     # default 10
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-10}"
export GC_CLUSTER_DIR="${GC_CLUSTER_DIR:-$PWD/gc-cluster-failover}" GC_LOG_LEVEL="${GC_LOG_LEVEL:-warning}"
swift build -c "${GC_BUILD:-release}" >/dev/null
bin="$(swift build -c "${GC_BUILD:-release}" --show-bin-path)"
gcctl="$bin/gcctl"
export GC_SIDECAR_BIN="$bin/gc-sidecar"
cluster/stop.sh --wipe >/dev/null 2>&1 || true
cluster/start.sh >/dev/null
endpoint() { case "$1" in n1) echo 127.0.0.1:50051;; n2) echo 127.0.0.1:50061;; n3) echo 127.0.0.1:50071;; esac; }
leader() {
  local deadline=$((SECONDS + 30))
  until l=$("$gcctl" cluster status --endpoint "$1" --output json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['leaderId'] if d.get('healthy') else '')") && [ -n "$l" ]; do
    [ $SECONDS -lt $deadline ] || { echo "no healthy leader" >&2; exit 1; }
    sleep 0.1
  done
  echo "$l"
}
for round in $(seq 1 "$ROUNDS"); do
  old=$(leader 127.0.0.1:50051)
  survivor=n1; [ "$old" = n1 ] && survivor=n2
  cluster/stop.sh --kill "$old" >/dev/null
  started=$(date +%s.%N)
  until "$gcctl" lease create --endpoint "$(endpoint "$survivor")" --object-id "failover-$round" \
      --service-id failover --duration 300 --timeout 2 >/dev/null 2>&1; do :; done
  echo "round $round: killed leader $old; write through $survivor acknowledged after $(echo "$(date +%s.%N) - $started" | bc) s"
  n=${old#n}; client=$(endpoint "$old"); client=${client##*:}
  for port in "$client" "$((client + 1))" "$((9090 + n))"; do
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
  done
  cluster/start.sh "$old" >/dev/null
done
cluster/stop.sh --wipe >/dev/null
