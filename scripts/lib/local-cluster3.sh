# A throwaway three-node gc-sidecar cluster on free loopback ports, for
# measurement scripts (source it; bash). Unlike cluster/start.sh it builds
# nothing and uses no fixed ports, so it can run beside a developer cluster.
#
#   lc3_start BIN_DIR STATE_DIR   # starts n1..n3, sets LC3_ENDPOINTS, LC3_PIDS
#   lc3_restart                   # stops and starts the same nodes (same ports and data)
#   lc3_wait_leader GCCTL SECONDS # until `gcctl cluster status` reports a leader with quorum
#   lc3_stop                      # SIGTERM, then SIGKILL after 10 s
#
# Every GC_* variable of the caller reaches the nodes; the launcher sets the
# node's identity, ports and data directory itself.

LC3_NODES=(n1 n2 n3)
declare -gA LC3_CLIENT_PORT LC3_RAFT_PORT LC3_METRICS_PORT LC3_PID

lc3_free_ports() { # COUNT: prints COUNT distinct free loopback TCP ports
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
}

lc3_start() {
    LC3_BIN="$1"; LC3_DIR="$2"
    mkdir -p "$LC3_DIR"
    local ports; read -r -a ports <<<"$(lc3_free_ports 9)"
    local i=0 n peers=()
    for n in "${LC3_NODES[@]}"; do
        LC3_CLIENT_PORT[$n]=${ports[$i]}; LC3_RAFT_PORT[$n]=${ports[$((i + 1))]}; LC3_METRICS_PORT[$n]=${ports[$((i + 2))]}
        peers+=("$n=127.0.0.1:${LC3_RAFT_PORT[$n]}")
        i=$((i + 3))
    done
    LC3_PEERS=$(IFS=,; echo "${peers[*]}")
    LC3_ENDPOINTS=$(for n in "${LC3_NODES[@]}"; do printf '127.0.0.1:%s,' "${LC3_CLIENT_PORT[$n]}"; done)
    LC3_ENDPOINTS=${LC3_ENDPOINTS%,}
    lc3_launch
}

lc3_launch() {
    local n
    for n in "${LC3_NODES[@]}"; do
        GC_NODE_ID=$n GC_PEERS="$LC3_PEERS" GC_SERVER_HOST=127.0.0.1 GC_SERVER_PORT=${LC3_CLIENT_PORT[$n]} \
            GC_RAFT_PORT=${LC3_RAFT_PORT[$n]} GC_METRICS_HOST=127.0.0.1 GC_METRICS_PORT=${LC3_METRICS_PORT[$n]} \
            GC_DATA_DIR="$LC3_DIR/$n" \
            "$LC3_BIN/gc-sidecar" >>"$LC3_DIR/$n.log" 2>&1 </dev/null &
        LC3_PID[$n]=$!
    done
    LC3_PIDS="${LC3_PID[*]}"
}

lc3_wait_leader() { # GCCTL SECONDS
    local deadline=$((SECONDS + $2)) n
    until "$1" cluster status --endpoint "${LC3_ENDPOINTS%%,*}" --timeout 2 >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "no leader with quorum within $2 s (logs: $LC3_DIR/n*.log)" >&2; return 1; }
        for n in "${LC3_NODES[@]}"; do
            kill -0 "${LC3_PID[$n]}" 2>/dev/null || { echo "$n exited: $(tail -n 3 "$LC3_DIR/$n.log")" >&2; return 1; }
        done
        sleep 0.2
    done
}

lc3_stop() {
    local n pid deadline=$((SECONDS + 10))
    for n in "${LC3_NODES[@]}"; do
        pid=${LC3_PID[$n]:-}; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for n in "${LC3_NODES[@]}"; do
        pid=${LC3_PID[$n]:-}; [ -n "$pid" ] || continue
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        LC3_PID[$n]=""
    done
}

lc3_restart() {
    lc3_stop
    lc3_launch
}

lc3_rss_kib() { # NODE [FIELD]: VmRSS (or FIELD, e.g. RssAnon) of the node's process in KiB
    awk -v field="${2:-VmRSS}:" '$1 == field { print $2 }' "/proc/${LC3_PID[$1]}/status"
}
