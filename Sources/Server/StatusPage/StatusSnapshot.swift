/// What `GET /ui/api/status` answers: everything the status page shows,
/// gathered by the node that serves the page. Field names are the JSON keys.
public struct StatusSnapshot: Codable, Sendable {
    /// The node that gathered this snapshot, and when (ms since 1970).
    public var node: String
    public var generatedAt: Int64
    public var security: Security
    public var cluster: Cluster
    public var leases: Leases
    public var cleanup: Cleanup
    public var deadLetters: DeadLetters

    /// How this node is protected.
    public struct Security: Codable, Sendable {
        /// `insecure`, `auth (plaintext)`, `tls+auth`, `mtls+auth` (the client port).
        public var clientPort: String
        public var peerTLS: Bool
        public var metricsTLS: Bool
        /// Whether an authorization policy is configured.
        public var auth: Bool
        /// How an operator proves themselves to retry dead letters here.
        public var retryRequires: String
    }

    public struct Cluster: Codable, Sendable {
        /// Empty when no leader is known.
        public var leader: String
        /// A leader is known and a quorum of voters answered.
        public var healthy: Bool
        public var nodes: [Node]
    }

    /// One member, as it answered (or `unreachable` with the reason).
    public struct Node: Codable, Sendable {
        public var id: String
        public var raftAddress: String
        public var role: String
        public var membership: String
        public var reachable: Bool
        public var term: UInt64
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public var lastLogIndex: UInt64
        public var matchIndex: UInt64
        /// Entries behind the leader's last index, as the leader sees it.
        public var lag: UInt64
        /// Milliseconds since the leader last heard from it (-1 unknown).
        public var lastContactMillis: Int64
        public var healthy: Bool
        /// Why it is unhealthy, or why it could not be asked.
        public var problem: String
        public var activeLeases: UInt64
        public var dbSizeBytes: UInt64
        /// Whether the peer port to it runs TLS (known for reachable peers:
        /// this node reached them over its own peer transport).
        public var peerTLS: Bool?
    }

    public struct Count: Codable, Sendable, Hashable {
        public var name: String
        public var count: Int
    }

    public struct Leases: Codable, Sendable {
        public var active: Int
        public var byService: [Count]
        public var byType: [Count]
        /// `linearizable`, or `stale` with the reason when the leader could not confirm.
        public var consistency: String
        /// The log index the counts are as of.
        public var appliedIndex: UInt64
    }

    public struct Cleanup: Codable, Sendable {
        public var pending: Int
        public var deadLettered: Int
        /// Cleanups this node's dispatcher has in flight.
        public var inFlight: Int
        /// Endpoints whose breaker is not closed, as this node's dispatcher
        /// holds them (only the leader's dispatcher delivers).
        public var openBreakers: [Breaker]
        /// Whether this node leads (its breakers are the ones in force).
        public var breakersAuthoritative: Bool
        public var intervalSeconds: Int
        public var rates: [RateHistory.Rates]
    }

    public struct Breaker: Codable, Sendable {
        public var endpoint: String
        public var state: String
    }

    public struct DeadLetters: Codable, Sendable {
        public var total: Int
        public var items: [DeadLetter]
    }

    public struct DeadLetter: Codable, Sendable {
        public var leaseId: String
        public var serviceId: String
        public var objectType: String
        public var objectId: String
        public var endpoint: String
        public var attempts: UInt32
        public var lastError: String
        /// When the job was created (ms since 1970).
        public var createdAt: Int64
        public var finishedAt: Int64?
    }
}

/// One lease event as the status page's live tail receives it (SSE `data:`).
public struct StatusEvent: Codable, Sendable {
    public var index: UInt64
    public var position: UInt32
    /// `created`, `renewed`, `released`, `expired`, `cleanup_succeeded`, …
    public var kind: String
    public var leaseId: String
    public var serviceId: String
    public var objectType: String
    public var objectId: String
    /// Milliseconds since 1970.
    public var at: Int64
    public var reason: String
    public var attempt: UInt32
}
