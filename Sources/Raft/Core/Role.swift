/// The role a node plays in its current term (Raft §5.1, plus the pre-candidate of §9.6).
public enum Role: UInt8, Sendable, Hashable, CustomStringConvertible {
    case follower
    /// Running a pre-vote round; its term has not been incremented.
    case preCandidate
    case candidate
    case leader

    public var description: String {
        switch self {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}
