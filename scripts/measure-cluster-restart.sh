#!/usr/bin/env bash
# Measures how fast a cluster node holding many leases serves again after
# kill -9 (BENCHMARKS.md, "Cluster restart").
#
#   scripts/measure-cluster-restart.sh [LEASES]     # default 100000
#
# Starts a fresh local release cluster (cluster/start.sh, GC_CLUSTER_DIR
# defaults to ./gc-cluster-restart), fills it with gcctl bench create, then
# for a follower and for the leader: kill -9, restart, and time from the
# restart until the node answers a linearizable GetLease through its own
# client port. Stops and wipes the cluster at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
LEASES="${1:-100000}"
export GC_CLUSTER_DIR="${GC_CLUSTER_DIR:-$PWD/gc-cluster-restart}"
export GC_MAX_LEASES_PER_SERVICE=10000000 GC_LOG_LEVEL="${GC_LOG_LEVEL:-warning}"
cluster/stop.sh --wipe >/dev/null 2>&1 || true
swift build -c "${GC_BUILD:-release}" >/dev/null
bin="$(swift build -c "${GC_BUILD:-release}" --show-bin-path)"
gcctl="$bin/gcctl"
# Start the built binary directly, so no build step is timed.
export GC_SIDECAR_BIN="$bin/gc-sidecar"
cluster/start.sh >/dev/null
endpoint() { case "$1" in n1) echo 127.0.0.1:50051;; n2) echo 127.0.0.1:50061;; n3) echo 127.0.0.1:50071;; esac; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
active() { "$gcctl" cluster status --endpoint 127.0.0.1:50051 --output json | field "max(int(n.get('activeLeases',0)) for n in d['nodes'])"; }

fill_started=$(date +%s.%N)
while [ "$(active)" -lt "$LEASES" ]; do
  "$gcctl" bench create --endpoint 127.0.0.1:50051,127.0.0.1:50061,127.0.0.1:50071 \
    --concurrency 128 --duration 20 --warmup 0 --lease-duration 3600 >/dev/null
done
echo "filled $(active) leases in $(echo "$(date +%s.%N) - $fill_started" | bc) s"
probe=$("$gcctl" lease create --endpoint 127.0.0.1:50051 --object-id restart-probe --service-id probe --duration 3600 --output json | field "d['leaseId']")

measure() {
  local node="$1" what="$2"
  cluster/stop.sh --kill "$node" >/dev/null
  # Wait until the killed process has let go of its ports (not timed).
  local client; client=$(endpoint "$node"); client=${client##*:}
  local n=${node#n}
  for port in "$client" "$((client + 1))" "$((9090 + n))"; do
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
  done
  local started; started=$(date +%s.%N)
  cluster/start.sh "$node" >"$GC_CLUSTER_DIR/restart-$node.out" 2>&1 &
  local deadline=$((SECONDS + 120))
  until "$gcctl" lease get --endpoint "$(endpoint "$node")" --timeout 1 "$probe" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "$node did not serve within 120 s" >&2; exit 1; }
    sleep 0.05
  done
  local elapsed; elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  wait
  local db; db=$(du -sh "$GC_CLUSTER_DIR/$node/data" | cut -f1)
  echo "$what $node: restart to first linearizable read $elapsed s (data dir $db)"
}

leader=$("$gcctl" cluster status --endpoint 127.0.0.1:50051 --output json | field "d['leaderId']")
follower=n1; [ "$leader" = n1 ] && follower=n2
measure "$follower" follower
"$gcctl" cluster status --endpoint 127.0.0.1:50051 >/dev/null || true
measure "$leader" leader
"$gcctl" cluster status --endpoint "$(endpoint "$follower")"
cluster/stop.sh --wipe >/dev/null
