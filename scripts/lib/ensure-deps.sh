# Installs what a build needs on a fresh Debian/Ubuntu machine, only if missing.
ensure_build_deps() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "swift is not on PATH: install Swift 6.1 or newer (https://www.swift.org/install/)" >&2
        exit 1
    fi
    if [ ! -f /usr/include/sqlite3.h ]; then
        echo "installing libsqlite3-dev (SQLite headers for the Raft log)" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq libsqlite3-dev
    fi
}

# The test suite also needs openssl (it makes throwaway certificates for the
# TLS tests), curl (HTTPS health checks), headless Chromium (the status page's
# browser test), promtool (the alert rules' tests, from Debian's
# `prometheus` package; its daemon is not started) and PostgreSQL 15's
# initdb and pg_ctl (Debian's `postgresql` package: the postgres-mode tests
# start throwaway servers with scripts/lib/postgres.sh; the package's own
# server is not started).
ensure_test_deps() {
    local missing=()
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    [ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] || missing+=(postgresql)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing ${missing[*]} (for the TLS, status page, alert rule and PostgreSQL tests)" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
        # Debian's package starts a Prometheus server where an init system
        # runs; the tests need only promtool.
        if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
            $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
        fi
        if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v systemctl >/dev/null 2>&1; then
            $sudo systemctl disable --now postgresql >/dev/null 2>&1 || true
        fi
    fi
}

# Only PostgreSQL 15 (cluster/start.sh --postgres, the postgres benchmark).
ensure_postgres_deps() {
    [ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] && return 0
    echo "installing postgresql (PostgreSQL mode runs a local throwaway server)" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
}
