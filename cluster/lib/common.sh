# shellcheck shell=bash
# Shared by cluster/start.sh and cluster/stop.sh: the fixed layout of the
# local three-node cluster and the pid-file checks. Sourced, not run.
#
# Node nX (X = 1, 2, 3) listens on loopback only, on
#   client gRPC 50051 / 50061 / 50071, Raft peers 50052 / 50062 / 50072,
#   Prometheus metrics 9091 / 9092 / 9093
# and keeps everything in $GC_CLUSTER_DIR/nX/ (data/, node.log, pid).

CLUSTER_NODES=(n1 n2 n3)
CLUSTER_HOST=127.0.0.1

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

is_cluster_node() {
    case "$1" in
        n1 | n2 | n3) return 0 ;;
        *) return 1 ;;
    esac
}

node_index() { echo "${1#n}"; }
client_port() { echo $((50041 + 10 * $(node_index "$1"))); }
raft_port() { echo $((50042 + 10 * $(node_index "$1"))); }
metrics_port() { echo $((9090 + $(node_index "$1"))); }

# GC_PEERS for every node: all three voters, this one included.
cluster_peers() {
    local node peers=""
    for node in "${CLUSTER_NODES[@]}"; do
        peers+="${peers:+,}$node=$CLUSTER_HOST:$(raft_port "$node")"
    done
    echo "$peers"
}

# The cluster folder as an absolute path: GC_CLUSTER_DIR (a relative value is
# taken from the directory the script was called from, $1), else
# <repository>/gc-cluster. Call it from the repository root.
resolve_cluster_dir() {
    local caller_dir="$1" dir="${GC_CLUSTER_DIR:-}"
    if [ -z "$dir" ]; then
        dir="$PWD/gc-cluster"
    elif [ "${dir#/}" = "$dir" ]; then
        dir="$caller_dir/$dir"
    fi
    echo "${dir%/}"
}

# Succeeds while process $1 is a live gc-sidecar: running or stopped, not a
# zombie, and "gc-sidecar" in its command line (so a stale pid file whose pid
# the system gave to another program after a reboot is never taken for a
# node, nor signalled).
pid_is_node() {
    local pid="$1" state args
    state="$(ps -o stat= -p "$pid" 2>/dev/null | tr -d '[:space:]')"
    case "$state" in
        '' | Z*) return 1 ;;
    esac
    args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
    case "$args" in
        *gc-sidecar*) return 0 ;;
        *) return 1 ;;
    esac
}

# Prints the pid recorded in pid file $1 and succeeds only while that process
# is a live node (pid_is_node).
live_node_pid() {
    local pid_file="$1" pid
    [ -f "$pid_file" ] || return 1
    pid="$(tr -d '[:space:]' <"$pid_file")"
    case "$pid" in
        '' | *[!0-9]*) return 1 ;;
    esac
    pid_is_node "$pid" || return 1
    echo "$pid"
}

# Succeeds when something accepts TCP connections on $1:$2 (bash /dev/tcp).
tcp_open() {
    # shellcheck disable=SC2016 # $0 and $1 belong to the inner bash
    local probe=(bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2")
    if command -v timeout >/dev/null 2>&1; then
        timeout 2 "${probe[@]}" 2>/dev/null
    else
        "${probe[@]}" 2>/dev/null
    fi
}
