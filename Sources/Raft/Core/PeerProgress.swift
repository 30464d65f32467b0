/// The leader's view of one peer's replication.
public struct PeerProgress: Sendable, Hashable {
    public var match: UInt64
    public var next: UInt64
    public var state: ProgressState
    public var isLearner: Bool
    public var recentActive: Bool
}
