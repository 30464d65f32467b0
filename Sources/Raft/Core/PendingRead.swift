/// A ReadIndex request waiting for leadership confirmation (dissertation §6.4).
struct PendingRead: Sendable, Hashable {
    /// Heartbeat round that must be acknowledged by a quorum before the read is answered.
    var seq: UInt64
    /// The commit index recorded when the read was registered.
    var index: UInt64
    var context: [UInt8]
    /// The node that asked (this node, or a follower that forwarded the request).
    var from: NodeID
}
