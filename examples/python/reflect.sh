#!/usr/bin/env bash
# Server reflection against a running gc-sidecar node, with no .proto file
# (what `grpcurl -plaintext localhost:50051 list` and `describe` do):
#
#   scripts/run.sh &                                       # start a node
#   examples/python/reflect.sh --endpoint localhost:50051
#
# Uses the same virtualenv as run.sh (<repo>/.build-python/venv, with
# grpcio-reflection from requirements.txt). Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.build-python/venv"
build="$repo/.build-python"

source "$here/venv.sh"

exec "$venv/bin/python" "$here/reflect.py" "$@"
