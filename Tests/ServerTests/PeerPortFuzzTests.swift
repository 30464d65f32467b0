import Foundation
import GCProto
import LeaseFSM
import Logging
import Raft
@testable import Server
import Synchronization
import Testing

/// The peer port end to end, fuzzed with fewer iterations than the core (`PeerFuzz` in
/// RaftTests): hostile message batches through the peer service into one node of a 3-node
/// in-process cluster (Raft messages, forwarded writes and forged replies), and garbage
/// forwarded writes into the leader's unary `Forward`. Nothing may crash or hang,
/// every refusal is counted by reason, garbage forwarded bytes are refused as invalid, and the
/// cluster still commits afterwards.
///
/// `PEER_FUZZ_SERVER_ITERATIONS` sets the batch count (CI: 1,000); `PEER_FUZZ_SEED` the seed.
@Suite("PeerPortFuzz", .timeLimit(.minutes(5)))
struct PeerPortFuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static let iterations = environment["PEER_FUZZ_SERVER_ITERATIONS"].flatMap(Int.init) ?? 1_000
    static let seed = environment["PEER_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5E_2E_F022

    struct Garbage {
        var rng: Raft.SplitMix64
        let members: [NodeID]

        mutating func chance(_ p: Double) -> Bool { Double(rng.next() % 1_000_000) / 1_000_000 < p }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(rng.next() % UInt64(range.count)) }

        mutating func value(near current: UInt64 = 3) -> UInt64 {
            let values: [UInt64] = [0, 1, 2, current, current &+ 1, 1 << 62, (1 << 62) + 1, 1 << 63, UInt64.max - 1, UInt64.max]
            if chance(0.5) { return current &+ UInt64(int(0...6)) &- 3 }
            return chance(0.3) ? rng.next() : values[int(0...(values.count - 1))]
        }

        mutating func node() -> NodeID { chance(0.8) ? members[int(0...(members.count - 1))] : [0, 99, UInt64.max][int(0...2)] }

        mutating func bytes(_ max: Int) -> Data { Data((0..<int(0...max)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }

        mutating func record(from: NodeID, to: NodeID) -> DistributedGc_Raft_RaftMessage {
            var r = DistributedGc_Raft_RaftMessage()
            r.type = chance(0.95) ? UInt32(int(1...12)) : UInt32(truncatingIfNeeded: rng.next())
            r.from = chance(0.9) ? from : node()
            r.to = chance(0.85) ? to : node()
            r.term = value(near: 2)
            r.logTerm = value()
            r.index = value(near: 10)
            r.commit = value(near: 10)
            r.reject = chance(0.5)
            r.rejectHint = value(near: 10)
            r.readSeq = value(near: 1)
            r.context = bytes(8)
            r.isLeadershipTransfer = chance(0.2)
            for i in 0..<int(0...4) {
                var e = DistributedGc_Raft_RaftEntry()
                e.term = chance(0.7) ? r.term : value()
                e.index = chance(0.7) ? r.index &+ UInt64(i + 1) : value()
                e.kind = chance(0.98) ? UInt32(int(0...2)) : 7
                e.data = bytes(32)
                r.entries.append(e)
            }
            if chance(0.3) {
                var c = DistributedGc_Raft_SnapshotChunk()
                c.metadata.index = value(near: 20)
                c.metadata.term = value()
                c.metadata.voters = chance(0.7) ? members : [node()]
                c.metadata.learners = chance(0.2) ? [node()] : []
                c.totalSize = [0, 10, 100, 5 << 30, UInt64.max][int(0...4)]
                c.offset = [0, 10, c.totalSize, UInt64.max][int(0...3)]
                c.data = bytes(64)
                r.snapshot = c
            }
            return r
        }

        /// Bytes for a forwarded write: random, a real command damaged, or a real command with
        /// an odd session.
        mutating func forwardedCommand() -> [UInt8] {
            let create = LeaseCommand.create(.init(
                leaseIDSuffix: "f\(int(0...999))", object: ObjectKey(type: .databaseRow, id: "row-\(int(0...9))"), serviceID: "svc",
                durationSeconds: [0, 1, 60, UInt64(Int64.max), UInt64.max][int(0...4)], metadata: [:], cleanup: nil))
            let origin = ClientOrigin(clientID: chance(0.1) ? "" : "fuzz-\(int(0...3))", sequence: value(), firstUnacknowledged: value())
            var encoded = StampedCommand(create, stamp: WallTime(milliseconds: Int64(int(0...1_000_000))), origin: origin).encoded()
            switch int(0...3) {
            case 0: return [UInt8](bytes(64))
            case 1:
                if !encoded.isEmpty { encoded[int(0...(encoded.count - 1))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
                return encoded
            case 2: return Array(encoded.prefix(int(0...encoded.count)))
            default: return encoded
            }
        }
    }

    static func create(_ object: String) -> LeaseCommand {
        .create(.init(leaseIDSuffix: "1", object: ObjectKey(type: .databaseRow, id: object), serviceID: "svc",
                      durationSeconds: 600, metadata: [:], cleanup: nil))
    }

    @Test("hostile peer batches and garbage forwarded writes neither crash nor wedge a node")
    func hostileTraffic() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        print("peer port fuzz: seed \(Self.seed), \(Self.iterations) batches (replay with PEER_FUZZ_SEED=\(Self.seed))")
        try await cluster.run { stores in
            _ = try await cluster.waitForLeader()
            _ = try await stores[0].propose(Self.create("before"))
            let victim = stores[Int(Self.seed % 3)]
            let victimID = victim.cluster.local.id
            var garbage = Garbage(rng: Raft.SplitMix64(seed: Self.seed), members: stores.map(\.cluster.local.id))
            var forwarded = 0
            var forwardedRefused = 0
            for i in 0..<Self.iterations {
                var batch = DistributedGc_Raft_MessageBatch()
                batch.fromID = garbage.node()
                batch.fromName = "fuzzer-\(i % 7)"
                batch.messages = (0..<garbage.int(1...8)).map { _ in garbage.record(from: batch.fromID, to: victimID) }
                // Forwarded writes and replies ride the same stream batches.
                if garbage.chance(0.3) {
                    batch.forwarded = (0..<garbage.int(1...3)).map { _ in
                        var command = DistributedGc_Raft_ForwardedCommand()
                        command.id = garbage.value()
                        command.command = Data(garbage.forwardedCommand())
                        return command
                    }
                }
                if garbage.chance(0.3) {
                    batch.replies = (0..<garbage.int(1...3)).map { _ in
                        var reply = DistributedGc_Raft_ForwardedReply()
                        reply.id = garbage.value(near: 1)
                        switch garbage.int(0...2) {
                        case 0: reply.reply = garbage.bytes(32)
                        case 1: reply.unavailable = "fuzz"
                        default: break
                        }
                        return reply
                    }
                }
                await RaftPeerService.deliver(batch, to: victim)
                if i % 3 == 0 {
                    let leader = try await cluster.waitForLeader()
                    var request = DistributedGc_Raft_ForwardRequest()
                    let bytes = garbage.forwardedCommand()
                    request.command = Data(bytes)
                    request.fromName = "fuzzer"
                    let response = await leader.acceptForwarded(request)
                    forwarded += 1
                    if (try? StampedCommand(decoding: bytes)) == nil {
                        // Bytes that do not decode are refused as invalid, never applied.
                        guard case .reply(let reply) = response.outcome,
                              case .failure(let error) = try CommandReplyCoding.decode([UInt8](reply)) else {
                            Issue.record("garbage forwarded bytes were not refused: \(response)")
                            continue
                        }
                        #expect(error.code == .invalidArgument)
                        forwardedRefused += 1
                    }
                }
            }
            let refused = victim.refusals.byReason
            print("peer port fuzz: refused \(refused.sorted { $0.key < $1.key }); \(forwarded) forwarded writes, \(forwardedRefused) refused as undecodable")
            for reason in ["undecodable", "sender_mismatch", "wrong_recipient", RefusalReason.outOfRange.rawValue, RefusalReason.malformedEntries.rawValue] {
                #expect(refused[reason, default: 0] > 0, "no \(reason) refusal counted")
            }
            #expect(forwardedRefused > 0)
            #expect(refused["unexpected_reply", default: 0] > 0, "forged replies to forwarded writes are refused")
            // Not wedged: the cluster still elects a leader and commits writes through the other
            // nodes. (The victim itself may have stopped on purpose: a forged append can commit
            // an entry it cannot decode, and a node stops rather than skip a committed entry.
            // Only peer authentication keeps forged leaders out.)
            for (n, store) in stores.enumerated() where store !== victim {
                _ = try await cluster.waitForLeader()
                guard case .created = try await store.propose(Self.create("after-\(n)")) else {
                    throw TestFailure("the write through node \(n) was not applied")
                }
            }
            print("peer port fuzz: the victim \(victim.healthProblem.map { "stopped: \($0)" } ?? "still serves")")
        }
    }

    /// What was logged, for assertions.
    final class LogRecords: Sendable {
        let lines = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
    }

    struct RecordingLogHandler: LogHandler {
        let records: LogRecords
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            records.lines.withLock { $0.append(("\(message)", metadata ?? [:])) }
        }
    }

    @Test("refusals are counted in gc_raft_refused_messages_total by reason, and logged once per reason with the peer")
    func refusalsAreCounted() async throws {
        let metrics = SidecarMetrics()
        let records = LogRecords()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        let refusals = PeerRefusals(logger: logger, metrics: metrics)
        refusals.record(.undecodable, peer: "n9", detail: "type 99")
        refusals.record(.undecodable, peer: "n9", detail: "type 98")
        refusals.record(RefusalReason.notAMember.rawValue, peer: "n9", detail: "removed")
        let text = metrics.exposition()
        #expect(text.contains(#"gc_raft_refused_messages_total{reason="undecodable"} 2"#), "\(text)")
        #expect(text.contains(#"gc_raft_refused_messages_total{reason="not_a_member"} 1"#), "\(text)")
        #expect(refusals.byReason == ["undecodable": 2, "not_a_member": 1])
        let logged = records.lines.withLock { $0 }
        #expect(logged.count == 2, "one line per reason: \(logged)")
        #expect(logged.map { $0.metadata["reason"]?.description } == ["undecodable", "not_a_member"])
        #expect(logged.allSatisfy { $0.metadata["peer"]?.description == "n9" })
        #expect(logged.first?.metadata["detail"]?.description == "type 99")
    }
}
