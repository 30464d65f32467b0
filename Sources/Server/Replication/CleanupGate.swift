import LeaseFSM

/// When this node may reap and dispatch (DESIGN.md: leader-only, after
/// committing an entry of its term and a hold-off after taking office).
///
/// Written by the store as leadership changes and entries apply; read,
/// without waiting for the store, by the cleanup loop (``RaftLeaseStore/mayRunCleanup``).
struct CleanupGate: Sendable {
    var isLeader = false
    var termStartIndex: UInt64 = 0
    var appliedIndex: UInt64 = 0
    var leaderSince = WallTime(milliseconds: 0)

    /// Whether cleanup may run at `now`, `holdOffMilliseconds` after taking office.
    func isOpen(at now: WallTime, holdOffMilliseconds: Int64) -> Bool {
        isLeader && appliedIndex >= termStartIndex && now >= leaderSince.adding(milliseconds: holdOffMilliseconds)
    }

    /// This node's role changed; a new term of office starts after `lastIndex`.
    mutating func roleChanged(isLeader: Bool, lastIndex: UInt64, at now: WallTime) {
        if isLeader && !self.isLeader {
            termStartIndex = lastIndex
            leaderSince = now
        }
        self.isLeader = isLeader
    }
}
