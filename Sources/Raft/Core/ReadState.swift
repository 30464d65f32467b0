/// The result of a ReadIndex request (dissertation §6.4).
///
/// Once the application has applied the log through `index`, it may answer the read identified by
/// `context` from its state machine, and the answer is linearizable.
public struct ReadState: Sendable, Hashable {
    /// The leader's commit index when the read was registered, confirmed by a quorum afterwards.
    public var index: UInt64
    /// The opaque context given to ``RaftNode/readIndex(context:)``.
    public var context: [UInt8]

    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}
