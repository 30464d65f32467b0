#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests, benchmarks and `cluster/start.sh
# --postgres`: a data folder of its own, a free loopback port, trust
# authentication (loopback and the unix socket only), fsync on.
#
#   scripts/lib/postgres.sh start DIR [--owner-pid PID]
#       Creates DIR (initdb, role `gc`, database `distributed_gc`) unless it
#       holds a server already, starts the server and prints its URL:
#       postgresql://gc@127.0.0.1:PORT/distributed_gc
#       With --owner-pid, the server is stopped and DIR removed once PID exits
#       (so a test process that dies does not leak a server).
#   scripts/lib/postgres.sh url DIR        prints the URL again
#   scripts/lib/postgres.sh restart DIR    pg_ctl restart -m immediate (a crash and
#                                          recovery), returns once it accepts connections
#   scripts/lib/postgres.sh stop DIR       stops it (-m immediate), keeps DIR; `start DIR`
#                                          starts it again on the same port
#   scripts/lib/postgres.sh destroy DIR    stops it and removes DIR
#   scripts/lib/postgres.sh psql DIR ARGS  psql as the superuser over the unix socket
#
# Run as root, the server runs as the `postgres` user (runuser); as anyone
# else, as that user. PG_BIN overrides where initdb and pg_ctl are looked for
# (default /usr/lib/postgresql/15/bin). scripts/lib/ensure-deps.sh installs
# Debian's `postgresql` package when they are missing.
#
# Sourcing this file defines the same operations as pg_throwaway_* functions.

# What the server must allow: 3 sidecars × GC_MAX_DB_CONNECTIONS plus tests.
PG_THROWAWAY_MAX_CONNECTIONS="${PG_THROWAWAY_MAX_CONNECTIONS:-300}"
# How long a start or restart may take before it counts as failed.
PG_THROWAWAY_READY_SECONDS="${PG_THROWAWAY_READY_SECONDS:-60}"
PG_THROWAWAY_MARKER=".gc-throwaway-postgres"

pg_throwaway_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
    elif [ -x /usr/lib/postgresql/15/bin/initdb ]; then
        echo /usr/lib/postgresql/15/bin
    else
        echo "PostgreSQL 15 not found in /usr/lib/postgresql/15/bin (install Debian's postgresql package, or set PG_BIN)" >&2
        return 1
    fi
}

# Runs a command as the server's owner: `postgres` when we are root.
pg_throwaway_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Runs a command that leaves a long-lived process behind (the server, the
# watchdog) with only stdin, stdout and stderr open: a descriptor inherited
# from the caller would stay open as long as the server runs, and a caller
# that waits for it to close (Foundation's Process on Linux does) would wait
# for the server to stop.
pg_throwaway_without_inherited_fds() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        "$@"
    )
}

# A loopback port nobody listens on now (the server's bind is the real test:
# start retries with another port when it loses a race).
pg_throwaway_pick_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free loopback port found" >&2
    return 1
}

# Polls pg_isready until the server accepts connections or the deadline passes.
pg_throwaway_wait_ready() {
    local dir=$1 bin port deadline
    bin=$(pg_throwaway_bin)
    port=$(cat "$dir/port")
    deadline=$((SECONDS + PG_THROWAWAY_READY_SECONDS))
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "PostgreSQL in $dir did not accept connections within ${PG_THROWAWAY_READY_SECONDS}s; its log:" >&2
            tail -n 30 "$dir/postgres.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

pg_throwaway_url() {
    local dir=$1
    echo "postgresql://gc@127.0.0.1:$(cat "$dir/port")/distributed_gc"
}

pg_throwaway_is_running() {
    local dir=$1 bin
    bin=$(pg_throwaway_bin)
    [ -f "$dir/data/postmaster.pid" ] && pg_throwaway_as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# Makes DIR's data folder: trust authentication for loopback and the socket,
# fsync on, enough connections for several sidecars' pools.
pg_throwaway_init() {
    local dir=$1 bin
    bin=$(pg_throwaway_bin)
    mkdir -p "$dir"
    touch "$dir/$PG_THROWAWAY_MARKER"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir" "$dir/$PG_THROWAWAY_MARKER"; fi
    chmod 700 "$dir"
    # --no-sync only skips initdb's own final flush; the server runs with fsync on.
    pg_throwaway_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    pg_throwaway_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# scripts/lib/postgres.sh: a throwaway server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = $PG_THROWAWAY_MAX_CONNECTIONS
fsync = on
synchronous_commit = on
full_page_writes = on
include_if_exists = 'port.conf'
EOF
}

pg_throwaway_start_server() {
    local dir=$1 bin attempt port
    bin=$(pg_throwaway_bin)
    for attempt in 1 2 3 4 5; do
        if [ ! -f "$dir/port" ]; then
            pg_throwaway_pick_port >"$dir/port"
            if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/port"; fi
        fi
        port=$(cat "$dir/port")
        echo "port = $port" | pg_throwaway_as_owner tee "$dir/data/port.conf" >/dev/null
        if pg_throwaway_without_inherited_fds pg_throwaway_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$PG_THROWAWAY_READY_SECONDS" start >/dev/null 2>&1; then
            pg_throwaway_wait_ready "$dir"
            return 0
        fi
        if grep -q "could not bind\|Address already in use" "$dir/postgres.log" 2>/dev/null; then
            # Lost the port to someone else: draw another (first start only
            # matters; a restart keeps its port so URLs stay valid).
            echo "port $port taken (attempt $attempt); trying another" >&2
            rm -f "$dir/port"
            continue
        fi
        echo "PostgreSQL in $dir did not start; its log:" >&2
        tail -n 30 "$dir/postgres.log" >&2 || true
        return 1
    done
    echo "PostgreSQL in $dir found no free port" >&2
    return 1
}

pg_throwaway_psql() {
    local dir=$1 bin
    shift
    bin=$(pg_throwaway_bin)
    pg_throwaway_as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" -U postgres -d postgres "$@"
}

# Stops the server and removes DIR once process PID is gone.
pg_throwaway_watch_owner() {
    local dir=$1 pid=$2 script
    script=$(readlink -f "${BASH_SOURCE[0]}")
    pg_throwaway_without_inherited_fds pg_throwaway_spawn_watchdog "$pid" "$script" "$dir"
}

pg_throwaway_spawn_watchdog() {
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec bash "$2" destroy "$3"' \
        pg-throwaway-watch "$@" </dev/null >/dev/null 2>&1 &
}

pg_throwaway_start() {
    local dir=$1 owner_pid=${2:-} fresh=0
    dir=$(readlink -m "$dir")
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        pg_throwaway_init "$dir"
        fresh=1
    fi
    if ! pg_throwaway_is_running "$dir"; then
        pg_throwaway_start_server "$dir"
    fi
    if [ "$fresh" -eq 1 ]; then
        pg_throwaway_psql "$dir" -c "CREATE ROLE gc LOGIN CREATEDB" -c "CREATE DATABASE distributed_gc OWNER gc" >/dev/null
    fi
    if [ -n "$owner_pid" ]; then pg_throwaway_watch_owner "$dir" "$owner_pid"; fi
    pg_throwaway_url "$dir"
}

pg_throwaway_restart() {
    local dir=$1 bin
    bin=$(pg_throwaway_bin)
    pg_throwaway_without_inherited_fds pg_throwaway_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -m immediate -w -t "$PG_THROWAWAY_READY_SECONDS" restart >/dev/null
    pg_throwaway_wait_ready "$dir"
}

pg_throwaway_stop() {
    local dir=$1 bin
    bin=$(pg_throwaway_bin)
    if pg_throwaway_is_running "$dir"; then
        pg_throwaway_as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    fi
}

pg_throwaway_destroy() {
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ ! -f "$dir/$PG_THROWAWAY_MARKER" ]; then
        echo "$dir is not a throwaway PostgreSQL folder (no $PG_THROWAWAY_MARKER); not removing it" >&2
        return 1
    fi
    pg_throwaway_stop "$dir" || true
    rm -rf "$dir"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    command=${1:-}
    dir=${2:-}
    if [ -z "$command" ] || [ -z "$dir" ]; then
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
    fi
    shift 2
    case "$command" in
        start)
            owner=""
            if [ "${1:-}" = "--owner-pid" ]; then owner=${2:?--owner-pid needs a PID}; fi
            pg_throwaway_start "$dir" "$owner"
            ;;
        url) pg_throwaway_url "$dir" ;;
        restart) pg_throwaway_restart "$dir" ;;
        stop) pg_throwaway_stop "$dir" ;;
        destroy) pg_throwaway_destroy "$dir" ;;
        psql) pg_throwaway_psql "$dir" "$@" ;;
        *) echo "unknown command '$command': start, url, restart, stop, destroy or psql" >&2; exit 2 ;;
    esac
fi
