import Testing
@testable import Raft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seeded fuzz of the peer protocol at the core: random and mutated messages of every type (huge,
/// zero and maximal terms and indices, malformed entries, snapshot chunks with absurd offsets and
/// sizes, senders that are not members, wrong recipients) hit one node of a live 3-node cluster
/// while it replicates, compacts and transfers leadership. The node must never crash, a refused
/// message must change nothing, the network must never spin without ticks, and afterwards the
/// cluster must still elect a leader and commit on a majority.
///
/// CI profile: 4 shards of 25 runs of 1,000 hostile messages (100,000; seconds in a debug build). Manual profile:
/// `PEER_FUZZ_ITERATIONS=1000000 swift test --filter PeerFuzz` (hostile messages in total).
/// Replay one run: `PEER_FUZZ_SEED=<seed> swift test --filter PeerFuzz`.
@Suite("PeerFuzz", .timeLimit(.minutes(30)))
struct PeerFuzzTests {
    static let shards = 4
    static let messagesPerRun = 1_000
    static let ciRunsPerShard = 25

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    static var runsPerShard: Int {
        if let text = environment("PEER_FUZZ_ITERATIONS"), let total = Int(text) {
            return max(1, total / (shards * messagesPerRun))
        }
        return ciRunsPerShard
    }

    static var baseSeed: UInt64 {
        environment("PEER_FUZZ_BASE_SEED").flatMap { UInt64($0) } ?? 0xF0_2201
    }

    struct Outcome {
        var seed: UInt64
        var messages = 0
        var refused: [RefusalReason: Int] = [:]
        var failures: [String] = []
    }

    /// One run: warm the cluster up, fuzz one victim node, then check the cluster still works.
    static func run(seed: UInt64, messages: Int = messagesPerRun) -> Outcome {
        var outcome = Outcome(seed: seed)
        let cluster = FuzzCluster(seed: seed)
        // Elect, replicate, compact: by now every message type has been sent at least once.
        for _ in 0..<80 {
            cluster.workload()
            cluster.tick()
        }
        // The attacker reaches one node's peer port; what that node says in return reaches the
        // others as usual. (Forged messages may make the victim adopt forged entries, but the two
        // other nodes keep a majority, so the cluster must stay live.)
        let victim = cluster.ids[Int(seed % UInt64(cluster.ids.count))]
        var mutator = MessageMutator(seed: mixSeed(seed, 0xF022), members: cluster.ids)
        for i in 0..<messages {
            var m: Message
            // Sorted: a dictionary's order differs between instances, and a run must replay.
            let kinds = cluster.corpus.keys.sorted { $0.rawValue < $1.rawValue }
            let genuine = mutator.rng.pick(kinds).flatMap { cluster.corpus[$0] }.flatMap { mutator.rng.pick($0) }
            if let genuine, mutator.rng.chance(0.75) {
                m = mutator.mutate(genuine)
                if mutator.rng.chance(0.95) && m.to != victim && cluster.ids.contains(m.to) { m.to = victim }
            } else {
                m = mutator.fresh(to: victim)
            }
            // Mostly from another node: messages "from" the victim itself are refused at once.
            if m.from == victim && mutator.rng.chance(0.9) { m.from = cluster.ids.first { $0 != victim }! }
            let before = cluster.nodes[victim]!
            let refusal = cluster.nodes[victim]!.step(m)
            outcome.messages += 1
            let after = cluster.nodes[victim]!
            if let refusal {
                outcome.refused[refusal.reason, default: 0] += 1
                if comparable(before.status()) != comparable(after.status()) || before.messages != after.messages {
                    outcome.failures.append("refused message changed the node: \(refusal)\n  message: \(m)\n  before: \(before.status())\n  after: \(after.status())")
                }
            }
            if after.commitIndex > after.lastIndex || after.snapshotIndex > after.commitIndex {
                outcome.failures.append("invariant broken after \(m): commit \(after.commitIndex), last \(after.lastIndex), snapshot \(after.snapshotIndex)")
            }
            if i % 8 == 7 { cluster.deliverAll() }
            if i % 16 == 15 {
                cluster.workload()
                cluster.tick()
            }
            if outcome.failures.count + cluster.failures.count >= 3 { break }
        }
        cluster.deliverAll()
        if cluster.commitsAProposal(within: 600) == nil {
            let states = cluster.ids.map { "\($0): \(cluster.nodes[$0]!.status())" }.joined(separator: "\n  ")
            outcome.failures.append("the cluster committed nothing within 600 ticks after the fuzz (wedged):\n  \(states)")
        }
        outcome.failures += cluster.failures
        return outcome
    }

    /// The status without the refusal counters (which a refusal changes by design).
    static func comparable(_ status: RaftStatus) -> RaftStatus {
        var status = status
        status.refused = [:]
        return status
    }

    @Test("hostile messages never crash, wedge or change a node they are refused by", arguments: 0..<shards)
    func fuzz(shard: Int) async {
        if Self.environment("PEER_FUZZ_SEED") != nil { return }
        var failures: [String] = []
        var refused: [RefusalReason: Int] = [:]
        var messages = 0
        let started = ContinuousClock.now
        for run in 0..<Self.runsPerShard {
            await Task.yield()
            let seed = Self.baseSeed &+ UInt64(run * Self.shards + shard)
            let outcome = Self.run(seed: seed)
            messages += outcome.messages
            refused.merge(outcome.refused, uniquingKeysWith: +)
            if !outcome.failures.isEmpty {
                failures.append("seed \(seed) (replay with PEER_FUZZ_SEED=\(seed)):\n  " + outcome.failures.prefix(3).joined(separator: "\n  "))
                if failures.count >= 3 { break }
            }
        }
        let elapsed = ContinuousClock.now - started
        print("peer fuzz shard \(shard): \(Self.runsPerShard) runs, \(messages) hostile messages in \(elapsed), refused \(refused.values.reduce(0, +)): \(refused.sorted { $0.key < $1.key }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " "))")
        #expect(failures.isEmpty, "peer fuzz failures:\n\(failures.joined(separator: "\n"))")
        // The fuzz reaches the paths that trapped before this hardening: each of these was a
        // precondition, an overflow or an out-of-range index in the old core.
        for reason: RefusalReason in [.wrongRecipient, .notAMember, .outOfRange, .malformedEntries, .malformedSnapshot, .snapshotTooLarge] {
            #expect(refused[reason, default: 0] > 0, "the fuzz never produced a \(reason.rawValue) refusal")
        }
    }

    @Test("replay one seed from PEER_FUZZ_SEED")
    func replay() {
        guard let text = Self.environment("PEER_FUZZ_SEED"), let seed = UInt64(text) else { return }
        let outcome = Self.run(seed: seed)
        print("seed \(seed): \(outcome.messages) messages, refused \(outcome.refused)")
        #expect(outcome.failures.isEmpty, "\(outcome.failures.joined(separator: "\n"))")
    }

    @Test("a run is reproducible from its seed")
    func reproducible() {
        let a = Self.run(seed: 77, messages: 300)
        let b = Self.run(seed: 77, messages: 300)
        #expect(a.refused == b.refused && a.failures == b.failures)
    }
}
