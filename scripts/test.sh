#!/usr/bin/env bash
# Runs the whole test suite (the README's test command; .ci/run calls it).
#
#   scripts/test.sh            # every test, CI profile (short simulation runs)
#   RAFT_SIM_RUNS=100000 scripts/test.sh --filter Simulation   # long manual profile
#
# Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_build_deps
swift build --build-tests
swift test --skip-build "$@"
