#!/usr/bin/env bash
# Side by side, in one run, on this machine: a 3-node gc-sidecar cluster and a
# 3-member etcd 3.4 cluster on loopback, driven by the same neutral Python load
# generator (2 processes, 64 calls in flight, 10 s, after a warm-up), runs
# alternating ours/theirs, fresh clusters each time. Prints each pair's median
# ratio (ours / etcd). Run from the project root after setup.sh and a release build:
#
#   scripts/bench/setup.sh && swift build -c release --product gc-sidecar
#   scripts/bench/vs-etcd.sh .build/release                   # all pairs, 3 rounds
#   PAIRS="create" ROUNDS=1 scripts/bench/vs-etcd.sh .build/release
#
# Pairs: create = CreateLease vs LeaseGrant; release = ReleaseLease vs
# LeaseRevoke; renew = RenewLease vs LeaseKeepAlive (etcd keeps renewals in
# leader memory, unreplicated; ours are durable); keepalive = renewals on our
# KeepAlive stream (durable, folded into one log entry per batch) vs
# LeaseKeepAlive.
#
# This is the project's copy of the neutral side-by-side kit (loadgen.py,
# cluster3.py, the etcd scripts and stripped etcd protos beside it); the copy
# adds the keepalive pair and loadgen's gc-keepalive target. PAIRS may also name
# "health": our HealthCheck alone, the gRPC stack's own no-op ceiling.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "${1:?usage: vs-etcd.sh BIN_DIR}" && pwd)
export BENCH_HOME=$(cd "${BENCH_HOME:-.build-bench}" && pwd)
PY=$BENCH_HOME/venv/bin/python
PAIRS=${PAIRS:-"create release renew keepalive"}; ROUNDS=${ROUNDS:-3}
st=$(mktemp -d)
cleanup() { $PY "$HERE/cluster3.py" stop --dir "$st/gc" >/dev/null 2>&1; ETCD_BENCH_DIR=$st/etcd "$HERE/stop_etcd3.sh" >/dev/null 2>&1; rm -rf "$st"; }
trap cleanup EXIT
ours_t() { case $1 in create) echo gc-create;; release) echo gc-release;; renew) echo gc-renew;; keepalive) echo gc-keepalive;; health) echo gc-health;; esac; }
theirs_t() { case $1 in create) echo etcd-grant;; release) echo etcd-revoke;; renew|keepalive) echo etcd-keepalive;; *) echo none;; esac; }
lg() { $PY "$HERE/loadgen.py" "$@" --procs 2 --concurrency 64 --duration 10 --quiet-wait 30 2>&1 | grep 'ops/s' | tail -1; }
num() { sed -E 's/.*ops\/s= *([0-9.]+).*/\1/'; }
declare -A O T
for r in $(seq 1 "$ROUNDS"); do
  for p in $PAIRS; do
    if [ "$(theirs_t $p)" != none ]; then
      ETCD_BENCH_DIR=$st/etcd "$HERE/start_etcd3.sh" --fresh >/dev/null 2>&1
      line=$(lg --target "$(theirs_t $p)" --endpoints 127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793 --to leader)
      echo "round $r etcd: $line"; T[$p]="${T[$p]:-} $(echo "$line" | num)"
      ETCD_BENCH_DIR=$st/etcd "$HERE/stop_etcd3.sh" >/dev/null 2>&1; rm -rf "$st/etcd"
    fi
    eps=$($PY "$HERE/cluster3.py" start --bin "$BIN" --dir "$st/gc"); sleep 3
    line=$(lg --target "$(ours_t $p)" --endpoints "$eps" --to all)
    echo "round $r ours: $line"; O[$p]="${O[$p]:-} $(echo "$line" | num)"
    $PY "$HERE/cluster3.py" stop --dir "$st/gc" >/dev/null
    # A run with errors keeps its nodes' logs for a look afterwards.
    if ! echo "$line" | grep -q 'errors={}'; then
      kept=$(mktemp -d /tmp/vs-etcd-errors-XXXX); cp "$st"/gc/*.log "$st/gc/cluster.json" "$kept/" 2>/dev/null
      echo "round $r ours: errors; node logs kept in $kept"
    fi
    rm -rf "$st/gc"
  done
done
for p in $PAIRS; do
  $PY - "$p" ${O[$p]} -- ${T[$p]} <<'PYEOF'
import sys, statistics
a = sys.argv[2:]; k = a.index("--")
ours = [float(x) for x in a[:k] if x]; theirs = [float(x) for x in a[k+1:] if x]
mo = statistics.median(ours) if ours else 0; mt = statistics.median(theirs) if theirs else 0
print(f"{sys.argv[1]:8s} ours {mo:8.0f}/s  etcd {mt:8.0f}/s  ratio {mo / mt if mt else 0:.2f}  (runs ours={ours} etcd={theirs})")
PYEOF
done
