#!/usr/bin/env bash
# Runs the Python example client against a running gc-sidecar node.
#
#   scripts/run.sh &                                   # start a node
#   examples/python/run.sh --endpoint localhost:50051  # run the example
#
# On first use it creates a virtualenv in <repo>/.build-python/venv and
# installs requirements.txt into it; every run regenerates the gRPC stubs from
# proto/gc_service.proto into <repo>/.build-python/gen. Arguments are passed to
# example.py (see `examples/python/run.sh --help`). Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$repo/.build-python"
venv="$build/venv"
gen="$build/gen"

source "$here/venv.sh"

# Generate gc_service_pb2.py and gc_service_pb2_grpc.py. `grpc_tools.protoc`
# adds the well-known types (google/protobuf/timestamp.proto) by itself.
mkdir -p "$gen"
"$venv/bin/python" -m grpc_tools.protoc \
    -I "$repo/proto" \
    --python_out="$gen" \
    --grpc_python_out="$gen" \
    "$repo/proto/gc_service.proto"

PYTHONPATH="$gen${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" "$here/example.py" "$@"
