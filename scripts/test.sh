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
ensure_test_deps
swift build --build-tests
# The real-process tests run the release binaries, the ones users run (a
# release-only miscompile has been seen once).
# (One --product per call: swift build builds only the last one it is given.)
swift build -c release --product gc-sidecar
swift build -c release --product gcctl
export GC_TEST_BIN_DIR="$PWD/.build/release"
if [ $# -gt 0 ]; then
    exec swift test --skip-build "$@"
fi
# Five rounds, so that the real-process tests do not share two cores with
# hundreds of others: the in-process tests (their few real-time checks allow
# for scheduling lag); the CPU-bound Raft simulation and peer-port fuzzing
# (in the first round they kept both cores and the concurrency pool busy for
# a minute, and real-time checks there came within seconds of their limits);
# the real-process cluster tests on the release build
# (three gc-sidecar processes each, LeaseKeeper, the Python example), one
# at a time, then the acceptance suite again over mTLS; the in-process chaos profile, which keeps both cores busy for
# minutes. Every round runs; the script fails if any did.
status=0
heavy='^RaftTests\.SimulationTests|^ServerTests\.PeerPortFuzzTests'
swift test --skip-build --skip '^ChaosTests\.' --skip '^ClusterTests\.' --skip "$heavy" || status=$?
swift test --skip-build --filter "$heavy" || status=$?
swift test --skip-build --no-parallel --filter '^ClusterTests\.' || status=$?
# The cluster acceptance tests again, with mutual TLS on the client and peer
# ports and an authorization policy on every node (certificates made by the
# test with openssl).
GC_TEST_CLUSTER_TLS=1 swift test --skip-build --no-parallel --filter '^ClusterTests\.ThreeNodeClusterTests' || status=$?
swift test --skip-build --filter '^ChaosTests\.' || status=$?
# The Prometheus alert rules (deploy/prometheus) against their unit tests.
scripts/check-alert-rules.sh || status=$?
exit $status
