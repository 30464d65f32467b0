import Raft

/// What the health endpoints report (`/healthz`, `/readyz` and
/// `grpc.health.v1.Health`), from one place so they always agree.
///
/// - Live (`/healthz`): the node's store works; it fails once the node
///   stopped itself (storage failed, disk full, a log entry it cannot apply,
///   a snapshot it cannot write). A restart is the remedy.
/// - Ready (`/readyz`): live, a leader is known, and this node has applied
///   its log to within ``maxApplyLag`` entries of the commit index, so a
///   read it serves is not far behind.
public struct NodeHealth: Sendable {
    public struct Report: Sendable, Hashable {
        public var ok: Bool
        /// One line: `ok`, or what is wrong.
        public var reason: String
    }

    /// Entries between commit and applied above which the node is not ready.
    public var maxApplyLag: UInt64 = 1_000
    let problem: @Sendable () -> String?
    let raft: @Sendable () async -> (leaderKnown: Bool, commit: UInt64, applied: UInt64)
    /// Why a live node is not ready, or nil (PostgreSQL mode: the database).
    let notReady: (@Sendable () async -> String?)?

    public init(problem: @escaping @Sendable () -> String?,
                raft: @escaping @Sendable () async -> (leaderKnown: Bool, commit: UInt64, applied: UInt64)) {
        self.problem = problem
        self.raft = raft
        self.notReady = nil
    }

    /// A sidecar without Raft (PostgreSQL mode): live unless `problem`,
    /// ready unless `notReady` says why not (e.g. the database is unreachable).
    public init(problem: @escaping @Sendable () -> String?, notReady: @escaping @Sendable () async -> String?) {
        self.problem = problem
        self.raft = { (true, 0, 0) }
        self.notReady = notReady
    }

    /// A node's health from its store.
    public init(store: RaftLeaseStore) {
        self.init(problem: { store.healthProblem }) {
            let status = await store.status()
            return (status.leaderID != nil, status.commit, status.applied)
        }
    }

    public func liveness() -> Report {
        if let problem = problem() { return Report(ok: false, reason: "node stopped: \(problem)") }
        return Report(ok: true, reason: "ok")
    }

    public func readiness() async -> Report {
        let live = liveness()
        guard live.ok else { return live }
        if let notReady {
            if let reason = await notReady() { return Report(ok: false, reason: reason) }
            return Report(ok: true, reason: "ok")
        }
        let (leaderKnown, commit, applied) = await raft()
        guard leaderKnown else { return Report(ok: false, reason: "no leader known (election in progress, or no quorum)") }
        let lag = commit > applied ? commit - applied : 0
        guard lag <= maxApplyLag else {
            return Report(ok: false, reason: "applying the log: \(lag) committed entries not yet applied (ready within \(maxApplyLag))")
        }
        return Report(ok: true, reason: "ok")
    }
}
