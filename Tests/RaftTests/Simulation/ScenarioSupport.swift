@testable import Raft

extension Cluster {
    /// A fault-free cluster for scenario tests: messages move only when the test says so
    /// (`stabilize`, `tick`), nothing is lost, and nodes 1...voters start as the voters.
    static func scenario(voters: Int, spares: [NodeID] = [], seed: UInt64 = 1, _ tweak: (inout SimOptions) -> Void = { _ in }) -> Cluster {
        var options = SimOptions()
        options.proposeRate = 0
        options.maxInflight = 8
        options.maxEntriesPerAppend = 8
        options.snapshotChunkSize = 1024
        tweak(&options)
        let cluster = Cluster(seed: seed, options: options, voters: (1...UInt64(voters)).map { $0 }, spares: spares)
        cluster.faultsEnabled = false
        return cluster
    }

    /// Makes `id` campaign and delivers everything until quiet.
    func elect(_ id: NodeID) {
        campaign(id)
        stabilize()
    }

    /// Data of the normal entries `id` applied in this incarnation.
    func appliedData(_ id: NodeID) -> [[UInt8]] {
        node(id).applied.filter { $0.kind == .normal }.map(\.data)
    }

    /// Every message currently in flight.
    var pendingMessages: [Message] { inFlight.map(\.message) }

    /// Drops every message in flight.
    func dropInFlight() {
        inFlight.removeAll()
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
