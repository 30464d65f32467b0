import Raft

/// How a ``RaftLeaseStore`` takes part in a cluster.
public struct ClusterSettings: Sendable {
    /// This node.
    public var local: ClusterMember
    /// The voters a brand-new log starts with (GC_PEERS). Empty when the node
    /// joins an existing cluster and learns the membership from its leader.
    public var bootstrapVoters: Set<NodeID>
    /// Connections to the other members; nil for a node that has none.
    public var transport: (any PeerNetwork)?
    /// Raft ticks in one (minimum) election timeout.
    public var electionTicks: Int
    /// Real time of one tick (= the heartbeat interval).
    public var tickInterval: Duration
    /// How long a write or linearizable read may wait for a leader.
    public var requestTimeout: Duration
    /// Where Raft's state and events are counted (none in most tests).
    public var metrics: SidecarMetrics?
    /// What retries, waits and the Raft ticker read and sleep by.
    public var time: TimeSource

    public init(local: ClusterMember, bootstrapVoters: Set<NodeID>, transport: (any PeerNetwork)?,
                electionTicks: Int = 10, tickInterval: Duration = .milliseconds(50), requestTimeout: Duration = .seconds(5)) {
        self.local = local
        self.bootstrapVoters = bootstrapVoters
        self.transport = transport
        self.electionTicks = electionTicks
        self.tickInterval = tickInterval
        self.requestTimeout = requestTimeout
        self.metrics = nil
        self.time = .continuous
    }

    /// A node alone in its cluster (no GC_PEERS): it elects itself at start.
    public static func singleNode(name: String = "n1") -> ClusterSettings {
        let local = ClusterMember(name: name, host: "127.0.0.1", port: 50052)
        return ClusterSettings(local: local, bootstrapVoters: [local.id], transport: nil)
    }

    /// One election timeout in real time.
    public var electionTimeout: Duration { tickInterval * electionTicks }

    /// The request timeout in ticks (at least one): how long a wait the store
    /// bounds by its own ticks (an index to be applied) may last.
    var requestTimeoutTicks: UInt64 {
        guard tickInterval > .zero else { return 1 }
        return UInt64(max(1, (requestTimeout / tickInterval).rounded(.up)))
    }
}
