@testable import Raft

/// One randomized, seeded run: a fault phase with client traffic and membership changes, then a
/// liveness phase with all faults healed. Returns the violations found (empty when correct).
struct Simulation {
    let seed: UInt64
    let options: SimOptions

    init(seed: UInt64) {
        self.seed = seed
        var rng = SplitMix64(seed: mixSeed(seed, 0x5EED))
        self.options = SimOptions.swarm(&rng)
    }

    init(seed: UInt64, options: SimOptions) {
        self.seed = seed
        self.options = options
    }

    struct Outcome {
        var violations: [String]
        var ticks: Int
        var committed: Int
        var description: String
        var stats: Cluster.Stats
        var elections: Int
        var finalState: String
    }

    func run() -> Outcome {
        let voters = (1...UInt64(options.nodeCount)).map { $0 }
        let spare = UInt64(options.nodeCount + 1)
        let cluster = Cluster(seed: seed, options: options, voters: voters, spares: options.confChangeRate > 0 ? [spare] : [])
        var proposals: UInt64 = 0

        // Fault phase.
        for t in 1...options.faultTicks {
            injectFaults(cluster)
            cluster.tick()
            clientTraffic(cluster, &proposals)
            cluster.processReadys()
            if t % 25 == 0 { cluster.checkLogMatching() }
            if !cluster.violations.isEmpty { break }
        }

        // Liveness phase: heal everything, restart every node, stop injecting faults.
        cluster.heal()
        cluster.faultsEnabled = false
        for id in cluster.ids where !cluster.node(id).isUp { cluster.start(id) }
        let marker = Array("live-\(seed)".utf8)
        var proposedInTerm: UInt64 = 0
        var live = false
        var livenessTicks = 0
        while cluster.violations.isEmpty && livenessTicks < options.livenessTicks {
            livenessTicks += 1
            cluster.tick()
            if let leader = cluster.leader() {
                let term = cluster.raft(leader).term
                if term != proposedInTerm, (try? cluster.propose(leader, marker)) != nil {
                    proposedInTerm = term
                    cluster.processReadys()
                }
            }
            if cluster.committed.values.contains(where: { $0.data == marker }) {
                live = true
                break
            }
        }
        cluster.checkLogMatching()
        if !live && cluster.violations.isEmpty {
            cluster.fail("liveness: no leader committed a proposal within \(options.livenessTicks) ticks after healing")
        }
        return Outcome(
            violations: cluster.violations,
            ticks: options.faultTicks + livenessTicks,
            committed: cluster.committed.count,
            description: "seed=\(seed) \(options)",
            stats: cluster.stats,
            elections: cluster.leaderOfTerm.count,
            finalState: cluster.summary()
        )
    }

    private func injectFaults(_ cluster: Cluster) {
        var rng = cluster.rng
        defer { cluster.rng = rng }
        let ids = cluster.ids
        if rng.chance(options.partitionRate) {
            switch rng.int(0...2) {
            case 0:
                if let victim = rng.pick(ids) { cluster.isolate(victim) }
            case 1:
                var a: [NodeID] = []
                var b: [NodeID] = []
                for id in ids { if rng.chance(0.5) { a.append(id) } else { b.append(id) } }
                cluster.partition([a, b])
            default:
                if let from = rng.pick(ids), let to = rng.pick(ids), from != to {
                    cluster.blocked.insert(Link(from: from, to: to)) // one-way
                }
            }
        } else if !cluster.blocked.isEmpty && rng.chance(options.healRate) {
            cluster.heal()
        }
        if rng.chance(options.crashRate), let victim = rng.pick(ids.filter { cluster.node($0).isUp }) {
            cluster.crash(victim, restartAfter: rng.int(3...40), powerLoss: rng.chance(0.5))
        }
    }

    private func clientTraffic(_ cluster: Cluster, _ proposals: inout UInt64) {
        var rng = cluster.rng
        defer { cluster.rng = rng }
        let up = cluster.ids.filter { cluster.node($0).isUp }
        // Mostly propose at the leader (throughput), sometimes anywhere (not-leader errors).
        let leaderTarget = rng.chance(0.7) ? cluster.leader() : nil
        if rng.chance(options.proposeRate), let target = leaderTarget ?? rng.pick(up) {
            proposals += 1
            let data = Array("p\(proposals)".utf8)
            do {
                _ = try cluster.propose(target, data)
            } catch {
                if case .notLeader = error, cluster.raft(target).role == .leader {
                    cluster.fail("leader \(target) refused a proposal as not leader")
                }
            }
        }
        if rng.chance(options.readRate), let target = rng.pick(up) {
            cluster.issueRead(target)
        }
        if rng.chance(options.transferRate), let leader = cluster.leader(), let target = rng.pick(Array(cluster.raft(leader).conf.voters).sorted()) {
            _ = try? cluster.withRaft(leader) { (raft: inout RaftNode) throws(RaftError) in try raft.transferLeadership(to: target) }
        }
        if rng.chance(options.confChangeRate), let leader = cluster.leader() {
            let conf = cluster.raft(leader).conf
            let spares = cluster.ids.filter { !conf.voters.contains($0) && !conf.learners.contains($0) }
            let change: ConfChange?
            if let learner = conf.learners.sorted().first {
                change = ConfChange(type: .promote, nodeID: learner)
            } else if let spare = spares.first {
                change = ConfChange(type: .addLearner, nodeID: spare)
            } else if conf.voters.count > 3, let victim = rng.pick(conf.voters.sorted()) {
                change = ConfChange(type: .removeNode, nodeID: victim)
            } else {
                change = nil
            }
            if let change {
                _ = try? cluster.withRaft(leader) { (raft: inout RaftNode) throws(RaftError) in try raft.proposeConfChange(change) }
            }
        }
    }
}
