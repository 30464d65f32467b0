#!/usr/bin/env bash
# Builds (if needed) and starts one gc-sidecar node on embedded defaults:
# gRPC on 0.0.0.0:50051, Prometheus metrics on :9090/metrics.
#
#   scripts/run.sh                          # release build
#   GC_BUILD=debug scripts/run.sh           # faster to build
#   GC_SERVER_PORT=6000 GC_LOG_LEVEL=debug scripts/run.sh   # any variable from the README
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_build_deps
config="${GC_BUILD:-release}"
# One build of every product: building products one at a time makes SwiftPM
# rebuild shared modules on each call.
swift build -c "$config"
bin="$(swift build -c "$config" --show-bin-path)"
source scripts/lib/build-commit.sh
export_build_commit
echo "gc-sidecar: starting (gcctl is at $bin/gcctl)" >&2
exec "$bin/gc-sidecar"
