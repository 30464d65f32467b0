#!/usr/bin/env bash
# Starts a live 3-node cluster on loopback, gives it some leases, a failing
# cleanup (a dead letter) and a few expiries, and saves a headless-Chromium
# screenshot of node n2's status page (any node's shows the whole cluster) to
# docs/status-page.png.
#
#   scripts/screenshot-status-page.sh              # binaries from .build/debug
#   GC_TEST_BIN_DIR=.build/release scripts/screenshot-status-page.sh [OUT.png]
#
# Needs chromium (Debian: apt-get install -y chromium), python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${GC_TEST_BIN_DIR:-.build/debug}"
out="${1:-docs/status-page.png}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
for tool in "$bin/gc-sidecar" "$bin/gcctl"; do
  [ -x "$tool" ] || { echo "missing $tool: swift build --product gc-sidecar && swift build --product gcctl" >&2; exit 1; }
done
dir="$(mktemp -d /tmp/gc-status-shot.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
base=$((20000 + RANDOM % 20000))
peers="n1=127.0.0.1:$((base + 11)),n2=127.0.0.1:$((base + 12)),n3=127.0.0.1:$((base + 13))"
for i in 1 2 3; do
  GC_NODE_ID="n$i" GC_PEERS="$peers" GC_SERVER_HOST=127.0.0.1 GC_SERVER_PORT=$((base + i)) \
  GC_RAFT_PORT=$((base + 10 + i)) GC_METRICS_HOST=127.0.0.1 GC_METRICS_PORT=$((base + 20 + i)) GC_DATA_DIR="$dir/n$i" \
  GC_MIN_LEASE_DURATION=1 GC_CLEANUP_GRACE_PERIOD=0 GC_CLEANUP_INTERVAL=1 GC_CLEANUP_MAX_RETRIES=1 GC_CLEANUP_RETRY_DELAY=1 \
  GC_LOG_LEVEL=warning "$bin/gc-sidecar" > "$dir/n$i.log" 2>&1 &
  pids+=($!)
done
gcctl() { "$bin/gcctl" "$@" --endpoint "127.0.0.1:$((base + 1))" > /dev/null; }
for _ in $(seq 100); do gcctl lease create --object-id probe --service-id probe --duration 1 2>/dev/null && break; sleep 0.2; done
for n in 1 2 3 4 5; do gcctl lease create --object-id "order-$n" --object-type database-row --service-id orders --duration 600; done
for n in 1 2 3; do gcctl lease create --object-id "upload-$n.bin" --object-type blob-storage --service-id uploads --duration 600; done
gcctl lease create --object-id "session-1" --object-type websocket-session --service-id chat --duration 600
for n in 1 2 3 4; do gcctl lease create --object-id "tmp-$n" --object-type temporary-file --service-id batch --duration 2; done
# Nothing listens on port 9: this cleanup fails and is dead-lettered.
gcctl lease create --object-id "report-7.pdf" --object-type blob-storage --service-id reports --duration 1 \
  --cleanup-http "http://127.0.0.1:9/cleanup" --max-retries 1 --retry-delay 1
page="http://127.0.0.1:$((base + 22))/ui"
for _ in $(seq 150); do
  curl -fs "$page/api/status" | grep -q '"leaseId":"' && break
  sleep 0.2
done
sleep 6   # a few rate samples for the charts
# The page stays open while the live tail fills (see scripts/browser-dom.py).
python3 scripts/browser-dom.py "$page" --timeout 60 --screenshot "$out" \
  --until "document.body.dataset.loaded === 'true' && document.querySelector('#dead-letters tr[data-lease-id]') && document.querySelectorAll('#activity tr[data-kind]').length > 5" \
  > /dev/null
echo "wrote $out"
