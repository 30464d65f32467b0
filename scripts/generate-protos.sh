#!/usr/bin/env bash
# Regenerates the committed Swift code for proto/*.proto.
#
#   scripts/generate-protos.sh
#
# Needs protoc (apt-get install -y protobuf-compiler, installed here when
# missing) and the protoc-gen-swift / protoc-gen-grpc-swift-2 plugins of
# grpc-swift-protobuf 2.4.1, built once into $PLUGIN_DIR (default
# ~/.cache/grpc-swift-protobuf). The plugins' swift-protobuf must equal the
# runtime's (1.39.0), which that tag pins.
set -euo pipefail
cd "$(dirname "$0")/.."

PLUGIN_DIR="${PLUGIN_DIR:-$HOME/.cache/grpc-swift-protobuf}"
if ! command -v protoc >/dev/null; then
  apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi
if [ ! -x "$PLUGIN_DIR/.build/release/protoc-gen-grpc-swift-2" ] || [ ! -x "$PLUGIN_DIR/.build/release/protoc-gen-swift" ]; then
  [ -d "$PLUGIN_DIR" ] || git clone -q --branch 2.4.1 https://github.com/grpc/grpc-swift-protobuf.git "$PLUGIN_DIR"
  (cd "$PLUGIN_DIR" && swift build -c release --product protoc-gen-grpc-swift-2 && swift build -c release --product protoc-gen-swift)
fi
PLUGINS=(--plugin=protoc-gen-swift="$PLUGIN_DIR/.build/release/protoc-gen-swift"
         --plugin=protoc-gen-grpc-swift-2="$PLUGIN_DIR/.build/release/protoc-gen-grpc-swift-2")

# Client API (lease service, cluster admin) and the peer protocol: public
# messages plus gRPC client and server stubs.
protoc "${PLUGINS[@]}" -I proto \
  --swift_out=Sources/GCProto --swift_opt=Visibility=Public \
  --grpc-swift-2_out=Sources/GCProto --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true \
  proto/gc_service.proto proto/cluster.proto proto/raft.proto proto/cleanup.proto proto/health.proto proto/backup.proto

# Lease state machine commands and snapshots: messages only, internal to LeaseFSM.
protoc "${PLUGINS[@]}" -I proto \
  --swift_out=Sources/LeaseFSM/Generated --swift_opt=Visibility=Internal \
  proto/lease_fsm.proto

echo "generated: $(git status --porcelain Sources/GCProto Sources/LeaseFSM/Generated | wc -l) file(s) changed"
