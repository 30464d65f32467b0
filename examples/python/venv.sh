# Prepares the Python examples' virtualenv; sourced by run.sh and reflect.sh
# with $here (this folder), $build and $venv set. On first use it creates the
# virtualenv and installs requirements.txt into it (again whenever that file
# changes).

log() { echo "examples/python: $*" >&2; }

if ! command -v python3 >/dev/null 2>&1; then
    log "python3 is not on PATH: install Python 3.10 or newer"
    exit 1
fi

# Debian/Ubuntu ship `venv` without `ensurepip` unless python3-venv is
# installed, and `python3 -m venv` then fails. Install it only in that case.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "python3 cannot create virtualenvs (no venv/ensurepip module) and apt-get is not available; install your distribution's python3 venv package"
        exit 1
    fi
    log "installing python3-venv (needed to create the virtualenv)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq python3-venv
fi

# A venv whose pip does not run (e.g. an interrupted first run) is rebuilt.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating virtualenv in $venv"
    rm -rf "$venv"
    mkdir -p "$build"
    python3 -m venv "$venv"
fi

# Install (quietly) when requirements.txt changed since the last install.
stamp="$venv/.requirements.installed"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    log "installing $here/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi
