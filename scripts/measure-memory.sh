#!/usr/bin/env bash
# Measures the resident memory (VmRSS) of each node of a fresh local 3-node
# cluster (BENCHMARKS.md, "Memory per node"): idle, with LEASES active leases,
# after a restart holding them, after releasing them all, and after a restart
# with none. Prints a table in MiB.
#
#   scripts/measure-memory.sh [BIN_DIR]        # default .build/release; builds nothing
#   LEASES=1000000 scripts/measure-memory.sh   # the manual 1M figure
#
# Needs gc-sidecar and gcctl in BIN_DIR (swift build -c release), and python3.
# Variables:
#   LEASES                     leases to create (default 100000)
#   SETTLE                     seconds to wait before each reading (default 5)
#   GC_ENDED_LEASE_RETENTION   how long nodes keep released leases listable
#                              (default here 0, so "released" measures what
#                              the churn leaves behind; the product's default
#                              is 3600)
#   MEASURE_DIR                node data and logs (default: a temporary
#                              directory, removed at the end)
#   any other GC_* variable reaches every node (e.g. MALLOC_ARENA_MAX too).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/local-cluster3.sh

bin="${1:-.build/release}"
bin="$(cd "$bin" && pwd)"
for exe in gc-sidecar gcctl; do
    [ -x "$bin/$exe" ] || { echo "$bin/$exe is missing: build it first (swift build -c release)" >&2; exit 1; }
done
gcctl="$bin/gcctl"
leases="${LEASES:-100000}"
settle="${SETTLE:-5}"
export GC_ENDED_LEASE_RETENTION="${GC_ENDED_LEASE_RETENTION:-0}"
export GC_MAX_LEASES_PER_SERVICE="${GC_MAX_LEASES_PER_SERVICE:-10000000}"
export GC_MAX_LEASES="${GC_MAX_LEASES:-10000000}"
export GC_LOG_LEVEL="${GC_LOG_LEVEL:-warning}"

dir="${MEASURE_DIR:-}"
if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/gc-measure-memory.XXXXXX")"
    trap 'lc3_stop; rm -rf "$dir"' EXIT
else
    trap 'lc3_stop' EXIT
fi
ids="$dir/lease-ids"

# The largest activeLeases any node reports, and the smallest.
active_range() {
    "$gcctl" cluster status --endpoint "${LC3_ENDPOINTS%%,*}" --output json --timeout 5 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["nodes"]
counts = [int(n.get("activeLeases", 0)) for n in nodes]
print(min(counts) if len(counts) == 3 else -1, max(counts))'
}

# Waits until every node reports exactly $1 active leases (all applied).
wait_active() {
    local want="$1" deadline=$((SECONDS + 600)) range
    while :; do
        range="$(active_range || echo "-1 -1")"
        [ "$range" = "$want $want" ] && return 0
        [ $SECONDS -lt $deadline ] || { echo "nodes report $range active leases, wanted $want" >&2; return 1; }
        sleep 0.5
    done
}

rows=()
leader_name() {
    "$gcctl" cluster status --endpoint "${LC3_ENDPOINTS%%,*}" --output json --timeout 5 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("leaderId","?"))' || echo "?"
}
# One row: the phase, then RSS of n1..n3 and their max, then the anonymous
# part (heap, stacks: what the data costs, without the mapped code) of each
# and its max, then the leader, all in KiB.
reading() { # PHASE
    sleep "$settle"
    local n line="$1" anon="" kib max=0 amax=0
    for n in "${LC3_NODES[@]}"; do
        kib="$(lc3_rss_kib "$n")"
        line+=" $kib"
        [ "$kib" -gt "$max" ] && max=$kib
        kib="$(lc3_rss_kib "$n" RssAnon)"
        anon+=" $kib"
        [ "$kib" -gt "$amax" ] && amax=$kib
    done
    rows+=("$line $max$anon $amax $(leader_name)")
    echo "measured: ${rows[-1]} (KiB: RSS n1 n2 n3 max, anon n1 n2 n3 max, leader)" >&2
}

started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
lc3_start "$bin" "$dir"
lc3_wait_leader "$gcctl" 60
reading idle

"$gcctl" load create --endpoint "$LC3_ENDPOINTS" --count "$leases" --ids-file "$ids" >&2
wait_active "$leases"
reading "$leases-active"

lc3_restart
lc3_wait_leader "$gcctl" 120
wait_active "$leases"
reading "$leases-restarted"

# A release retried on another node after a timeout may find its lease
# already released and forgotten (NOT_FOUND): every node reaching 0 active
# leases is the check that counts.
"$gcctl" load release --endpoint "$LC3_ENDPOINTS" --ids-file "$ids" >&2 || true
wait_active 0
reading released

lc3_restart
lc3_wait_leader "$gcctl" 120
wait_active 0
reading released-restarted

echo
echo "VmRSS per node, MiB: $leases leases, 3 nodes on loopback, $(nproc) cores, started $started"
echo "GC_ENDED_LEASE_RETENTION=$GC_ENDED_LEASE_RETENTION, settle ${settle} s before each reading${MALLOC_ARENA_MAX:+, MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX}"
mib() { echo "$1/1024" | bc -l; }
printf '%-20s %7s %7s %7s %7s | %7s %7s %7s %7s  %s\n' phase "n1" "n2" "n3" "max" "anon n1" "n2" "n3" "max" leader
for row in "${rows[@]}"; do
    read -r phase a b c m x y z w leader <<<"$row"
    printf '%-20s %7.1f %7.1f %7.1f %7.1f | %7.1f %7.1f %7.1f %7.1f  %s\n' "$phase" "$(mib "$a")" "$(mib "$b")" "$(mib "$c")" \
        "$(mib "$m")" "$(mib "$x")" "$(mib "$y")" "$(mib "$z")" "$(mib "$w")" "$leader"
done
echo "(left: VmRSS; right: RssAnon, the part that is not mapped files such as the binary and libraries)"
