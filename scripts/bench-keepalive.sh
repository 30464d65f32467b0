#!/usr/bin/env bash
# Durable renewals over KeepAlive versus etcd 3.4's LeaseKeepAlive, side by
# side in one run on this machine: ROUNDS (default 3) alternating pairs, each
# against fresh clusters (3 etcd members; 3 gc-sidecar nodes), driven by the
# same load generator (2 processes, 64 streams in flight, 10 s after a
# warm-up). Each op writes one renewal on its slot's stream and awaits the
# answer. etcd answers a keepalive from the leader's memory; ours answers once
# the renewal is committed on a majority and applied. Prints each round and
# the median ratio (ours / etcd).
#
#   scripts/bench-keepalive.sh                    # release build in .build/release
#   ROUNDS=5 scripts/bench-keepalive.sh /path/to/bin
#
# Needs the bench kit's venv (scripts/bench/setup.sh makes it under
# BENCH_HOME, default .build-bench) and a release build of gc-sidecar. Uses
# scripts/bench/loadgen.py, the neutral load generator plus the gc-keepalive
# target.
set -u
cd "$(dirname "$0")/.."
SHARED=scripts/bench
BIN=$(cd "${1:-.build/release}" && pwd)
export BENCH_HOME=$(cd "${BENCH_HOME:-.build-bench}" && pwd)
PY=$BENCH_HOME/venv/bin/python
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
st=$(mktemp -d)
cleanup() {
  [ -f "$st/gc/cluster.json" ] && $PY "$SHARED/cluster3.py" stop --dir "$st/gc" >/dev/null 2>&1
  ETCD_BENCH_DIR=$st/etcd "$SHARED/stop_etcd3.sh" >/dev/null 2>&1
  rm -rf "$st"
}
trap cleanup EXIT
lg() {
  $PY scripts/bench/loadgen.py "$@" --procs 2 --concurrency 64 --duration "$SECONDS_PER_RUN" --quiet-wait 30 2>&1 \
    | grep -E 'ops/s|warning' | tail -2
}
num() { grep 'ops/s' | sed -E 's/.*ops\/s= *([0-9.]+).*/\1/'; }
ours="" theirs=""
for r in $(seq 1 "$ROUNDS"); do
  ETCD_BENCH_DIR=$st/etcd "$SHARED/start_etcd3.sh" --fresh >/dev/null 2>&1
  line=$(lg --target etcd-keepalive --endpoints 127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793 --to leader)
  echo "round $r etcd: $line"; theirs="$theirs $(echo "$line" | num)"
  ETCD_BENCH_DIR=$st/etcd "$SHARED/stop_etcd3.sh" >/dev/null 2>&1; rm -rf "$st/etcd"

  eps=$($PY "$SHARED/cluster3.py" start --bin "$BIN" --dir "$st/gc"); sleep 3
  line=$(lg --target gc-keepalive --endpoints "$eps" --to all)
  echo "round $r ours: $line"; ours="$ours $(echo "$line" | num)"
  $PY "$SHARED/cluster3.py" stop --dir "$st/gc" >/dev/null; rm -rf "$st/gc"
done
$PY - $ours -- $theirs <<'PYEOF'
import sys, statistics
a = sys.argv[1:]; k = a.index("--")
ours = [float(x) for x in a[:k] if x]; theirs = [float(x) for x in a[k+1:] if x]
mo = statistics.median(ours) if ours else 0; mt = statistics.median(theirs) if theirs else 0
print(f"keepalive ours {mo:8.0f}/s  etcd {mt:8.0f}/s  ratio {mo / mt if mt else 0:.2f}  (runs ours={ours} etcd={theirs})")
PYEOF
