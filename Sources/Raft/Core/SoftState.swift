/// Volatile state the application may want to observe (never persisted).
public struct SoftState: Sendable, Hashable {
    public var role: Role
    /// The leader of the current term as far as this node knows, or `nil`.
    public var leaderID: NodeID?

    public init(role: Role, leaderID: NodeID?) {
        self.role = role
        self.leaderID = leaderID
    }
}
