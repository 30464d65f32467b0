#!/usr/bin/env bash
# PostgreSQL mode against Raft mode, side by side in one run on this machine:
# the same neutral load generator (2 processes, 64 calls in flight, 10 s)
# drives CreateLease, RenewLease and ReleaseLease on
#   raft3: a 3-node Raft cluster (SQLite, fsync on),
#   pg1:   1 stateless sidecar over one local PostgreSQL 15 (fsync on),
#   pg3:   3 sidecars over the same kind of database,
# alternating, with a fresh cluster and a fresh database for every run. Then
# cleanups/s to a local HTTP sink (cleanup-bench) with 1 and 3 sidecars.
# Prints the median of each. Run from the project root:
#
#   scripts/bench/setup.sh && swift build -c release
#   scripts/bench/postgres-vs-raft.sh .build/release
#   WORKLOADS="create" ROUNDS=1 MODES="pg3 raft3" scripts/bench/postgres-vs-raft.sh .build/release
#   CLEANUP_LEASES=0 ...   # skip the cleanup part
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$(cd "${1:?usage: postgres-vs-raft.sh BIN_DIR}" && pwd)
export BENCH_HOME=$(cd "${BENCH_HOME:-.build-bench}" && pwd)
PY=$BENCH_HOME/venv/bin/python
WORKLOADS=${WORKLOADS:-"create renew release"}; ROUNDS=${ROUNDS:-3}; MODES=${MODES:-"raft3 pg1 pg3"}
CLEANUP_LEASES=${CLEANUP_LEASES:-50000}
PG="$ROOT/scripts/lib/postgres.sh"
st=$(mktemp -d); chmod 755 "$st"   # the database runs as the postgres user
cleanup() { $PY "$HERE/cluster3.py" stop --dir "$st/gc" >/dev/null 2>&1; "$PG" destroy "$st/pg" >/dev/null 2>&1; rm -rf "$st"; }
trap cleanup EXIT
lg() { $PY "$HERE/loadgen.py" "$@" --procs 2 --concurrency 64 --duration 10 --quiet-wait 30 2>&1 | grep 'ops/s' | tail -1; }
num() { sed -E 's/.*ops\/s= *([0-9.]+).*/\1/'; }
# Starts the mode's servers; prints their client endpoints.
up() {
  case $1 in
    raft3) $PY "$HERE/cluster3.py" start --bin "$BIN" --dir "$st/gc" ;;
    pg1|pg3)
      url=$("$PG" start "$st/pg") || { echo "cannot start PostgreSQL" >&2; return 1; }
      $PY "$HERE/cluster3.py" start --bin "$BIN" --dir "$st/gc" --postgres "$url" --sidecars "${1#pg}" ;;
  esac
}
down() { $PY "$HERE/cluster3.py" stop --dir "$st/gc" >/dev/null; rm -rf "$st/gc"; "$PG" destroy "$st/pg" >/dev/null 2>&1; }
declare -A R
for r in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    for m in $MODES; do
      eps=$(up "$m") || exit 1; sleep 3
      line=$(lg --target "gc-$w" --endpoints "$eps" --to all)
      echo "round $r $m $w: $line"; R[$m.$w]="${R[$m.$w]:-} $(echo "$line" | num)"
      down
    done
  done
done
for w in $WORKLOADS; do
  for m in $MODES; do
    $PY - "$w" "$m" ${R[$m.$w]} <<'PYEOF'
import sys, statistics
xs = [float(x) for x in sys.argv[3:] if x]
print(f"{sys.argv[1]:8s} {sys.argv[2]:6s} {statistics.median(xs) if xs else 0:8.0f}/s  (runs {xs})")
PYEOF
  done
done
if [ "$CLEANUP_LEASES" -gt 0 ]; then
  for n in 1 3; do
    export GC_MIN_LEASE_DURATION=1 GC_CLEANUP_INTERVAL=1 GC_CLEANUP_GRACE_PERIOD=0 GC_CLEANUP_ENDPOINT_RATE=0 \
      GC_CLEANUP_ENDPOINT_CONCURRENCY=256 GC_LOG_LEVEL=warning
    eps=$(up "pg$n") || exit 1; sleep 3
    echo "cleanup pg$n:"
    "$BIN/cleanup-bench" --endpoint "$eps" --sink http --leases "$CLEANUP_LEASES" --idle-seconds 3 2>&1 | grep -iE "filled|deliveries|cleanups/s" | head -5
    down
    unset GC_MIN_LEASE_DURATION GC_CLEANUP_INTERVAL GC_CLEANUP_GRACE_PERIOD GC_CLEANUP_ENDPOINT_RATE GC_CLEANUP_ENDPOINT_CONCURRENCY GC_LOG_LEVEL
  done
fi
