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
