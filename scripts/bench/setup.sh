#!/usr/bin/env bash
# Prepares the side-by-side benchmark kit (idempotent). Run from the project root:
#   scripts/bench/setup.sh
# Installs etcd 3.4 (Debian's etcd-server) if missing, and a Python venv with
# grpcio under $BENCH_HOME (default .build-bench; keep it in .gitignore).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
export BENCH_HOME=$(mkdir -p "${BENCH_HOME:-.build-bench}" && cd "${BENCH_HOME:-.build-bench}" && pwd)
if ! command -v etcd >/dev/null; then
  apt-get update -qq && apt-get install -y -qq etcd-server etcd-client >/dev/null
fi
if [ ! -x "$BENCH_HOME/venv/bin/python" ]; then
  python3 -m venv "$BENCH_HOME/venv"
  "$BENCH_HOME/venv/bin/pip" install -q grpcio grpcio-tools protobuf
fi
[ -f "$BENCH_HOME/gen/rpc_pb2.py" ] || "$BENCH_HOME/venv/bin/python" "$HERE/gen_protos.py" >/dev/null
echo "bench kit ready: $BENCH_HOME (etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'))"
