#!/usr/bin/env bash
# Stops nodes of the local cluster started by cluster/start.sh, by the pids in
# their pid files (cluster/README.md).
#
#   cluster/stop.sh                  # SIGTERM to n1, n2, n3; SIGKILL any still running 30 s later
#   cluster/stop.sh n2               # only n2
#   cluster/stop.sh --kill n2        # kill -9 n2 at once: a crash, for watching failover by hand
#   cluster/stop.sh --wipe           # stop all three, then delete nX/ (data, node.log, pid) and build
#                                    # (and, in PostgreSQL mode, the local database)
#   In PostgreSQL mode (start.sh --postgres) the local database stops once no sidecar runs.
#
#   GC_CLUSTER_DIR            the cluster folder, as for start.sh (default <repository>/gc-cluster)
#   GC_CLUSTER_STOP_TIMEOUT   seconds from SIGTERM to SIGKILL (default 30)
set -euo pipefail
caller_dir="$PWD"
cd "$(dirname "$0")/.."
source cluster/lib/common.sh

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

signal=TERM
wipe=false
nodes=()
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --kill) signal=KILL ;;
        --wipe) wipe=true ;;
        -*) die "unknown option '$arg' (see --help)" ;;
        *)
            is_cluster_node "$arg" || die "unknown argument '$arg': expected n1, n2 or n3 (or --help)"
            case " ${nodes[*]-} " in
                *" $arg "*) ;;
                *) nodes+=("$arg") ;;
            esac
            ;;
    esac
done
if $wipe && [ "${#nodes[@]}" -gt 0 ]; then
    # A voter that comes back with an empty log under the same name can vote
    # for a leader that lacks committed entries: Raft's guarantees assume a
    # voter never forgets what it acknowledged.
    die "--wipe stops and deletes the whole cluster, not one node: a voter restarted without its data can lose committed leases"
fi
[ "${#nodes[@]}" -gt 0 ] || nodes=("${CLUSTER_NODES[@]}")

cluster_dir="$(resolve_cluster_dir "$caller_dir")"
stop_timeout="${GC_CLUSTER_STOP_TIMEOUT:-30}"
[[ "$stop_timeout" =~ ^[0-9]+$ ]] || die "GC_CLUSTER_STOP_TIMEOUT must be a whole number of seconds, got '$stop_timeout'"

# Signal every node first, then wait for all of them together.
stopping=()
pids=()
failed=false
for node in "${nodes[@]}"; do
    pid_file="$cluster_dir/$node/pid"
    if pid="$(live_node_pid "$pid_file")"; then
        if ! kill -s "$signal" "$pid"; then
            echo "stop.sh: $node (pid $pid): cannot send SIG$signal" >&2
            failed=true
            continue
        fi
        # A node frozen with kill -STOP only acts on the SIGTERM once it runs again.
        [ "$signal" = KILL ] || kill -s CONT "$pid" 2>/dev/null || true
        echo "stop.sh: $node (pid $pid): SIG$signal sent" >&2
        stopping+=("$node")
        pids+=("$pid")
    elif [ -e "$pid_file" ]; then
        rm -f "$pid_file"
        echo "stop.sh: $node: not running (removed stale $pid_file)" >&2
    else
        echo "stop.sh: $node: not running" >&2
    fi
done

# Waits until none of the nodes in `stopping` is alive or $1 seconds pass;
# leaves the ones still alive in `stopping`/`pids`.
wait_for_exit() {
    local deadline=$((SECONDS + $1 + 1)) i still_nodes still_pids
    while [ "${#stopping[@]}" -gt 0 ]; do
        still_nodes=()
        still_pids=()
        for i in "${!stopping[@]}"; do
            if pid_is_node "${pids[$i]}"; then
                still_nodes+=("${stopping[$i]}")
                still_pids+=("${pids[$i]}")
            else
                echo "stop.sh: ${stopping[$i]} stopped" >&2
                # Remove the pid file unless start.sh has meanwhile written a new one.
                if [ "$(tr -d '[:space:]' <"$cluster_dir/${stopping[$i]}/pid" 2>/dev/null || true)" = "${pids[$i]}" ]; then
                    rm -f "$cluster_dir/${stopping[$i]}/pid"
                fi
            fi
        done
        stopping=(${still_nodes[@]+"${still_nodes[@]}"})
        pids=(${still_pids[@]+"${still_pids[@]}"})
        if [ "${#stopping[@]}" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        sleep 0.2
    done
}

if [ "$signal" = TERM ]; then
    wait_for_exit "$stop_timeout"
    if [ "${#stopping[@]}" -gt 0 ]; then
        for i in "${!stopping[@]}"; do
            echo "stop.sh: ${stopping[$i]} (pid ${pids[$i]}) still running after ${stop_timeout}s: SIGKILL" >&2
            kill -s KILL "${pids[$i]}" 2>/dev/null || true
        done
    fi
fi
wait_for_exit 10
if [ "${#stopping[@]}" -gt 0 ]; then
    die "still running: ${stopping[*]} (pids ${pids[*]})"
fi
if $failed; then
    die "could not signal every node (see above); nothing was deleted"
fi

# PostgreSQL mode: the local database stops with the last sidecar.
if [ -f "$cluster_dir/postgres-mode" ] && [ -d "$cluster_dir/postgres" ]; then
    running=false
    for node in "${CLUSTER_NODES[@]}"; do
        if live_node_pid "$cluster_dir/$node/pid" >/dev/null; then running=true; fi
    done
    if ! $running; then
        scripts/lib/postgres.sh stop "$cluster_dir/postgres" && echo "stop.sh: stopped the local PostgreSQL" >&2
    fi
fi

if $wipe; then
    for node in "${CLUSTER_NODES[@]}"; do
        if pid="$(live_node_pid "$cluster_dir/$node/pid")"; then
            die "$node (pid $pid) is running again; nothing deleted"
        fi
    done
    for node in "${CLUSTER_NODES[@]}"; do
        rm -rf "${cluster_dir:?}/$node"
    done
    rm -f "$cluster_dir/build"
    if [ -d "$cluster_dir/postgres" ]; then scripts/lib/postgres.sh destroy "$cluster_dir/postgres"; fi
    rm -f "$cluster_dir/postgres-mode"
    rmdir "$cluster_dir" 2>/dev/null || true
    echo "stop.sh: deleted the data, logs and pid files of n1, n2 and n3 in $cluster_dir" >&2
fi
