import LeaseFSM

/// How fresh a read must be (the wire's `ReadConsistency`).
public enum ReadConsistency: Sendable {
    /// Reflects every write acknowledged before the read started.
    case linearizable
    /// The answering node's local state, which may lag.
    case stale
}

/// The lease service's boundary to where lease state lives.
///
/// Every write goes through ``propose(_:)``; every read through the typed
/// questions of ``LeaseReads``. The gRPC layer knows nothing else, so the
/// Raft-replicated store (a ``MachineReadable`` store) and the PostgreSQL
/// store can stand behind the same service.
public protocol LeaseStore: LeaseReads {
    /// The rules the state machine enforces (used to validate before proposing).
    var limits: LeaseLimits { get }

    /// Stamps, replicates (where there is replication) and applies `command`.
    ///
    /// Returns once the command is durable and applied, with its result.
    /// - Throws: ``LeaseError`` when the state machine refused the command
    ///   (nothing changed); ``StoreError`` when the store could not decide
    ///   (the command may or may not have been applied).
    ///
    /// `origin` (a client's session and sequence) makes the command apply at
    /// most once: a retry with the same origin gets the first answer.
    func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult

    /// Lease events in log order, for `WatchLeases`.
    var events: EventHub { get }

    /// Whether this node may reap and dispatch cleanups now (the leader).
    var mayRunCleanup: Bool { get }

    /// True if this node leads and a quorum confirms it right now; asked
    /// before each batch of cleanup deliveries.
    func confirmLeadership() async -> Bool

    /// Why this store cannot accept writes (e.g. its log could not be
    /// written), or nil when it is healthy. Stale reads still work.
    var healthProblem: String? { get }
}

extension LeaseStore {
    /// ``propose(_:origin:)`` with no client session.
    public func propose(_ command: LeaseCommand) async throws -> CommandResult {
        try await propose(command, origin: nil)
    }
}

/// A store that could not give an answer.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// No leader, shutting down, or storage failed: retry later.
        case unavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
