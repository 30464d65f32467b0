/// A single-server membership change (dissertation §4.1).
public enum ConfChangeType: UInt8, Sendable, Hashable {
    /// Add a non-voting member that receives the log and catches up (§4.2.1).
    case addLearner = 1
    /// Turn an existing learner into a voter.
    case promote = 2
    /// Add a voter directly (or promote it if it is a learner). Prefer `addLearner` + `promote`.
    case addVoter = 3
    /// Remove a voter or learner. A leader that removes itself steps down once the entry commits
    /// (§4.2.2).
    case removeNode = 4
}
