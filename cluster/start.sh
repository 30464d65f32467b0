#!/usr/bin/env bash
# Starts a local three-node gc-sidecar cluster on loopback (cluster/README.md):
# builds once, starts n1, n2, n3 in the background and waits until each one
# accepts connections on its client port.
#
#   cluster/start.sh                    # release build, then n1, n2 and n3
#   GC_BUILD=debug cluster/start.sh     # debug build: faster to build
#   cluster/start.sh n2                 # start only n2 again (same ports, same data), e.g. after stop.sh --kill n2;
#                                       # builds again (a no-op unless the code changed) with the cluster's GC_BUILD
#   GC_LOG_LEVEL=debug GC_CLEANUP_INTERVAL=2 cluster/start.sh   # other variables reach every node
#   cluster/start.sh --tls              # mutual TLS on client and peer ports, with an authorization
#                                       # policy: makes a throwaway CA and certificates in
#                                       # $GC_CLUSTER_DIR/pki (cluster/lib/make-certs.sh) once;
#                                       # remembered for nodes started again alone
#   cluster/start.sh --postgres         # PostgreSQL mode: no Raft; n1, n2, n3 are stateless sidecars
#                                       # over one local throwaway PostgreSQL 15 in
#                                       # $GC_CLUSTER_DIR/postgres (scripts/lib/postgres.sh; installs
#                                       # Debian's postgresql package if missing); remembered, and
#                                       # stopped by stop.sh with the last sidecar, deleted by --wipe
#
#   node  client (gRPC)     raft peers        metrics
#   n1    127.0.0.1:50051   127.0.0.1:50052   127.0.0.1:9091
#   n2    127.0.0.1:50061   127.0.0.1:50062   127.0.0.1:9092
#   n3    127.0.0.1:50071   127.0.0.1:50072   127.0.0.1:9093
#
# Files: $GC_CLUSTER_DIR/nX/data (GC_DATA_DIR), nX/node.log (appended), nX/pid,
# and $GC_CLUSTER_DIR/build (the GC_BUILD the cluster was built with).
#   GC_CLUSTER_DIR             default <repository>/gc-cluster
#   GC_CLUSTER_START_TIMEOUT   seconds to wait for the nodes to answer (default 60)
#   GC_SIDECAR_BIN             run this executable instead of building one (a
#                              stand-in for testing these scripts; its path
#                              must contain "gc-sidecar", see lib/common.sh)
set -euo pipefail
caller_dir="$PWD"
cd "$(dirname "$0")/.."
source cluster/lib/common.sh

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

nodes=()
tls=""
postgres=""
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --tls) tls=1 ;;
        --postgres) postgres=1 ;;
        *)
            is_cluster_node "$arg" || die "unknown argument '$arg': expected n1, n2 or n3 (or --help)"
            case " ${nodes[*]-} " in
                *" $arg "*) ;;
                *) nodes+=("$arg") ;;
            esac
            ;;
    esac
done
[ "${#nodes[@]}" -gt 0 ] || nodes=("${CLUSTER_NODES[@]}")

cluster_dir="$(resolve_cluster_dir "$caller_dir")"
# GC_BUILD, else the build the cluster was last started with (a node started
# again alone runs the same configuration as its peers), else release.
config="${GC_BUILD:-$(cat "$cluster_dir/build" 2>/dev/null || echo release)}"
case "$config" in
    release | debug) ;;
    *) die "GC_BUILD must be release or debug, got '$config'" ;;
esac
start_timeout="${GC_CLUSTER_START_TIMEOUT:-60}"
[[ "$start_timeout" =~ ^[1-9][0-9]*$ ]] || die "GC_CLUSTER_START_TIMEOUT must be a whole number of seconds, got '$start_timeout'"

# These differ per node, so the script sets them; a value from the caller would
# put every node on the same port or folder.
for var in GC_NODE_ID GC_PEERS GC_SERVER_HOST GC_SERVER_PORT GC_RAFT_HOST GC_RAFT_PORT \
    GC_METRICS_HOST GC_METRICS_PORT GC_DATA_DIR; do
    if [ -n "${!var:-}" ]; then
        echo "start.sh: ignoring $var=${!var}: the cluster sets it per node" >&2
    fi
done

# Refuse before building or starting anything: a node that is still running,
# or a port that another program (scripts/run.sh's node, say) holds.
for node in "${nodes[@]}"; do
    pid_file="$cluster_dir/$node/pid"
    if pid="$(live_node_pid "$pid_file")"; then
        die "$node is already running (pid $pid in $pid_file); stop it first: cluster/stop.sh $node"
    fi
    for port in "$(client_port "$node")" "$(raft_port "$node")" "$(metrics_port "$node")"; do
        if tcp_open "$CLUSTER_HOST" "$port"; then
            die "$node: $CLUSTER_HOST:$port is already in use by another program; free it first"
        fi
    done
done

if [ -n "${GC_SIDECAR_BIN:-}" ]; then
    bin="$GC_SIDECAR_BIN"
    [ "${bin#/}" != "$bin" ] || bin="$caller_dir/$bin"
    [ -x "$bin" ] || die "GC_SIDECAR_BIN=$GC_SIDECAR_BIN is not an executable file"
    build="GC_SIDECAR_BIN"
    gcctl="$(dirname "$bin")/gcctl"
    [ -x "$gcctl" ] || gcctl="gcctl"
else
    source scripts/lib/ensure-deps.sh
    ensure_build_deps
    # The build of scripts/run.sh: every product in one call (building them one
    # at a time makes SwiftPM rebuild shared modules on each call).
    swift build -c "$config"
    mkdir -p "$cluster_dir"
    echo "$config" >"$cluster_dir/build"
    bin_dir="$(swift build -c "$config" --show-bin-path)"
    bin="$bin_dir/gc-sidecar"
    gcctl="$bin_dir/gcctl"
    build="$config build"
    source scripts/lib/build-commit.sh
    export_build_commit
fi

# --tls, or a cluster that was started with it: every node gets its
# certificate on both ports, the CA and the policy.
pki="$cluster_dir/pki"
if [ -n "$tls" ] || [ -f "$cluster_dir/tls" ]; then
    tls=1
    mkdir -p "$cluster_dir"
    cluster/lib/make-certs.sh "$pki"
    touch "$cluster_dir/tls"
fi
tls_env() {
    [ -n "$tls" ] || return 0
    echo GC_TLS_CERT_FILE="$pki/$1.pem" GC_TLS_KEY_FILE="$pki/$1.key" GC_TLS_CLIENT_CA_FILE="$pki/ca.pem" \
        GC_PEER_TLS_CERT_FILE="$pki/$1.pem" GC_PEER_TLS_KEY_FILE="$pki/$1.key" GC_PEER_TLS_CA_FILE="$pki/ca.pem" \
        GC_AUTH_POLICY_FILE="$pki/policy.yaml"
}

# --postgres, or a cluster that was started with it: one local database
# (started again if it is stopped) that every node uses instead of Raft.
database_url=""
if [ -n "$postgres" ] || [ -f "$cluster_dir/postgres-mode" ]; then
    postgres=1
    mkdir -p "$cluster_dir"
    source scripts/lib/ensure-deps.sh
    ensure_postgres_deps
    database_url="$(scripts/lib/postgres.sh start "$cluster_dir/postgres")" || die "cannot start the local PostgreSQL in $cluster_dir/postgres (see $cluster_dir/postgres/postgres.log)"
    touch "$cluster_dir/postgres-mode"
    echo "start.sh: PostgreSQL mode, database $database_url" >&2
fi
backend_env() {
    if [ -n "$postgres" ]; then
        echo GC_STORAGE_BACKEND=postgres DATABASE_URL="$database_url"
    else
        echo GC_PEERS="$(cluster_peers)"
    fi
}

# Starts one node in its own session (so a Ctrl-C in this terminal does not
# reach it), with its output appended to node.log. The launched process writes
# its own pid before it execs the binary, so the pid file holds the node's pid.
start_node() {
    local node="$1" dir="$cluster_dir/$1"
    local launcher=(bash -c 'echo "$$" >pid && exec "$@"' launch)
    if command -v setsid >/dev/null 2>&1; then
        launcher=(setsid "${launcher[@]}")
    fi
    mkdir -p "$dir/data"
    rm -f "$dir/pid"
    printf '==== %s cluster/start.sh: starting %s (%s)\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$node" "$bin" >>"$dir/node.log"
    (
        cd "$dir"
        # shellcheck disable=SC2046 # word splitting of tls_env is intended
        exec "${launcher[@]}" env $(tls_env "$node") $(backend_env) \
            GC_NODE_ID="$node" \
            GC_SERVER_HOST="$CLUSTER_HOST" GC_SERVER_PORT="$(client_port "$node")" \
            GC_RAFT_HOST="$CLUSTER_HOST" GC_RAFT_PORT="$(raft_port "$node")" \
            GC_METRICS_HOST="$CLUSTER_HOST" GC_METRICS_PORT="$(metrics_port "$node")" \
            GC_DATA_DIR="$dir/data" \
            "$bin"
    ) </dev/null >>"$dir/node.log" 2>&1 &
}

show_log_tail() {
    echo "---- last lines of $cluster_dir/$1/node.log" >&2
    tail -n 20 "$cluster_dir/$1/node.log" >&2 || true
    echo "----" >&2
}

for node in "${nodes[@]}"; do
    start_node "$node"
done

# Wait until every started node accepts TCP connections on its client port.
# A TCP check rather than `gcctl health`: that command also fails (exit 1)
# while a node answers but reports itself unhealthy, and a stand-in binary
# has no gcctl.
deadline=$((SECONDS + start_timeout + 1))
pending=("${nodes[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
    waiting=()
    for node in "${pending[@]}"; do
        if ! live_node_pid "$cluster_dir/$node/pid" >/dev/null; then
            if [ ! -s "$cluster_dir/$node/pid" ] && [ "$SECONDS" -lt "$deadline" ]; then
                waiting+=("$node") # launched a moment ago: its pid file is not written yet
                continue
            fi
            show_log_tail "$node"
            die "$node exited during start-up (log above); any other node is left running: cluster/stop.sh stops them"
        fi
        if tcp_open "$CLUSTER_HOST" "$(client_port "$node")"; then
            echo "start.sh: $node answers on $CLUSTER_HOST:$(client_port "$node")" >&2
        else
            waiting+=("$node")
        fi
    done
    pending=(${waiting[@]+"${waiting[@]}"})
    [ "${#pending[@]}" -gt 0 ] || break
    if [ "$SECONDS" -ge "$deadline" ]; then
        for node in "${pending[@]}"; do
            show_log_tail "$node"
        done
        die "no answer from ${pending[*]} on its client port within ${start_timeout}s (GC_CLUSTER_START_TIMEOUT); the nodes are left running for a look: cluster/stop.sh stops them"
    fi
    sleep 0.5
done

echo
echo "gc-sidecar cluster ($build) in $cluster_dir:"
printf '  %-4s  %-8s  %-16s  %-16s  %s\n' node pid client raft metrics
for node in "${CLUSTER_NODES[@]}"; do
    pid="$(live_node_pid "$cluster_dir/$node/pid")" || pid="down"
    printf '  %-4s  %-8s  %-16s  %-16s  %s\n' "$node" "$pid" \
        "$CLUSTER_HOST:$(client_port "$node")" "$CLUSTER_HOST:$(raft_port "$node")" \
        "http://$CLUSTER_HOST:$(metrics_port "$node")/metrics"
done
echo
if [ -n "$tls" ]; then
    echo "mTLS on both ports; credentials in $pki (operator: admin.pem, service demo: demo.pem)"
    echo "Cluster status: $gcctl cluster status --endpoint $CLUSTER_HOST:$(client_port n1) --cacert $pki/ca.pem --cert $pki/admin.pem --key $pki/admin.key"
else
    echo "Cluster status: $gcctl cluster status --endpoint $CLUSTER_HOST:$(client_port n1)"
fi
if [ -n "$postgres" ]; then
    echo "PostgreSQL mode: stateless sidecars over $database_url (the raft ports are unused)"
else
    echo "Status page:    http://$CLUSTER_HOST:$(metrics_port n1)/ui   (any node: $(metrics_port n2), $(metrics_port n3))"
fi
echo "Logs:           tail -f $cluster_dir/n*/node.log"
echo "Stop:           cluster/stop.sh   (one node: cluster/stop.sh n2; crash one: cluster/stop.sh --kill n2)"
