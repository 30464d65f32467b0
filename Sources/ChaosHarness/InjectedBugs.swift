/// Deliberate bugs the harness can switch on, to prove its checkers catch
/// what they claim to (tests keep one run per bug).
public struct InjectedBugs: OptionSet, Hashable, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Every node reaps and delivers cleanups, leader or not, without
    /// confirming leadership (the reaper/dispatcher gate removed).
    public static let followerReaps = InjectedBugs(rawValue: 1 << 0)
    /// Linearizable reads are answered from local state without ReadIndex
    /// (the read path's quorum check removed).
    public static let staleLinearizableReads = InjectedBugs(rawValue: 1 << 1)
    /// Storage acknowledges writes before they are durable: a node's votes
    /// and log entries reach its peers while still only in memory, and a
    /// kill loses the last few (the persist-before-send rule broken).
    public static let unsyncedAcks = InjectedBugs(rawValue: 1 << 2)
    /// The reaper runs 100 times less often than configured (a stalled
    /// reaper loop): leases outlive their expiry.
    public static let stalledReaper = InjectedBugs(rawValue: 1 << 3)
}
