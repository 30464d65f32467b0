import Synchronization

/// What a client saw of one lease when an operation returned it.
public struct LeaseView: Hashable, Sendable {
    public enum State: String, Hashable, Sendable {
        case active, expired, released
    }

    public var leaseID: String
    /// `type/id`, e.g. `DATABASE_ROW/orders-7`.
    public var object: String
    public var state: State
    /// The lease's expiry on the cluster's clock (Unix ms).
    public var expiresAtMs: Int64
    public var fencingToken: UInt64
    public var incarnation: UInt64

    public init(leaseID: String, object: String, state: State, expiresAtMs: Int64, fencingToken: UInt64, incarnation: UInt64) {
        self.leaseID = leaseID
        self.object = object
        self.state = state
        self.expiresAtMs = expiresAtMs
        self.fencingToken = fencingToken
        self.incarnation = incarnation
    }
}

/// Why the cluster refused an operation (a definite answer: nothing changed).
public enum Refusal: String, Hashable, Sendable {
    /// The lease was past its expiry when the command applied.
    case expired
    /// The lease had been released.
    case released
    /// No such lease.
    case notFound
    /// Any other refusal (quota, validation): says nothing about the lease.
    case other
}

/// How an operation ended, as the client saw it.
public enum Outcome: Hashable, Sendable {
    /// Still running when the history was taken: treated like ``unknown``.
    case pending
    /// Done; a lease operation returns the lease as it was after it.
    case ok(LeaseView?)
    /// Refused: definitely had no effect.
    case refused(Refusal, String)
    /// Timed out or failed in a way that leaves open whether it took effect.
    case unknown(String)

    public var isDefinite: Bool {
        switch self {
        case .ok, .refused: true
        case .pending, .unknown: false
        }
    }
}

/// One client operation: its invocation and completion, in true time and in
/// a global order of events (`seq`), which is what real-time precedence uses.
public struct ClientOperation: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case create, renew, release
        /// A linearizable read.
        case get
        /// A read of the answering node's local state (not linearizable).
        case staleGet
    }

    public var id: Int
    public var client: Int
    /// The node the client called.
    public var node: String
    public var kind: Kind
    /// Known for every kind but a create that did not succeed.
    public var leaseID: String?
    public var object: String
    /// The duration asked for (create, renew), in ms.
    public var durationMs: Int64
    public var invokedAtMs: Int64
    public var invokeSeq: UInt64
    public var completedAtMs: Int64?
    public var completeSeq: UInt64?
    public var outcome: Outcome

    public init(id: Int, client: Int, node: String, kind: Kind, leaseID: String?, object: String, durationMs: Int64,
                invokedAtMs: Int64, invokeSeq: UInt64, completedAtMs: Int64?, completeSeq: UInt64?, outcome: Outcome) {
        self.id = id
        self.client = client
        self.node = node
        self.kind = kind
        self.leaseID = leaseID
        self.object = object
        self.durationMs = durationMs
        self.invokedAtMs = invokedAtMs
        self.invokeSeq = invokeSeq
        self.completedAtMs = completedAtMs
        self.completeSeq = completeSeq
        self.outcome = outcome
    }

    /// The lease this operation returned, if it succeeded with one.
    public var view: LeaseView? { outcome.view }

    /// A create or renew the cluster acknowledged.
    public var isAcknowledgedGrant: Bool {
        (kind == .create || kind == .renew) && view != nil
    }
}

/// A cleanup request a target received.
public struct Delivery: Hashable, Sendable {
    /// The leadership check that preceded the delivery on the sending node
    /// (in-process runs only).
    public struct Confirmation: Hashable, Sendable {
        public var startSeq: UInt64
        /// The node's role when the check began.
        public var wasLeader: Bool
        public var term: UInt64

        public init(startSeq: UInt64, wasLeader: Bool, term: UInt64) {
            self.startSeq = startSeq
            self.wasLeader = wasLeader
            self.term = term
        }
    }

    public var node: String
    public var object: String
    public var incarnation: UInt64
    public var leaseID: String
    public var idempotencyKey: String
    public var fencingToken: UInt64
    public var attempt: UInt32
    public var atMs: Int64
    public var seq: UInt64
    /// What the target answered.
    public var succeeded: Bool
    /// nil when the harness cannot see the sender's leadership check (real processes).
    public var confirmation: Confirmation?

    public init(node: String, object: String, incarnation: UInt64, leaseID: String, idempotencyKey: String,
                fencingToken: UInt64, attempt: UInt32, atMs: Int64, seq: UInt64, succeeded: Bool, confirmation: Confirmation?) {
        self.node = node
        self.object = object
        self.incarnation = incarnation
        self.leaseID = leaseID
        self.idempotencyKey = idempotencyKey
        self.fencingToken = fencingToken
        self.attempt = attempt
        self.atMs = atMs
        self.seq = seq
        self.succeeded = succeeded
        self.confirmation = confirmation
    }
}

/// A node seen leading a term (by polling it), at a point in the event order.
public struct LeaderObservation: Hashable, Sendable {
    public var node: String
    public var term: UInt64
    public var seq: UInt64

    public init(node: String, term: UInt64, seq: UInt64) {
        self.node = node
        self.term = term
        self.seq = seq
    }
}

/// Everything a run recorded, safe to append to from many tasks.
///
/// `seq` numbers come from one counter, so `a.completeSeq < b.invokeSeq`
/// means `a` really finished before `b` began.
public final class HistoryRecorder: Sendable {
    struct Contents {
        var seq: UInt64 = 0
        var operations: [ClientOperation] = []
        var deliveries: [Delivery] = []
        var leaders: [LeaderObservation] = []
        var lastLeaderTerm: [String: UInt64] = [:]
    }

    private let contents = Mutex(Contents())
    private let now: @Sendable () -> Int64

    /// - Parameter now: true time in ms (the harness's virtual time, or the
    ///   host clock for real processes).
    public init(now: @escaping @Sendable () -> Int64) {
        self.now = now
    }

    /// The next point in the global event order.
    public func nextSeq() -> UInt64 {
        contents.withLock { $0.seq += 1; return $0.seq }
    }

    /// Records an invocation; returns its id for ``complete(_:_:)``.
    public func invoke(client: Int, node: String, kind: ClientOperation.Kind, leaseID: String?, object: String, durationMs: Int64 = 0) -> Int {
        let at = now()
        return contents.withLock { c in
            c.seq += 1
            let id = c.operations.count
            c.operations.append(ClientOperation(
                id: id, client: client, node: node, kind: kind, leaseID: leaseID, object: object, durationMs: durationMs,
                invokedAtMs: at, invokeSeq: c.seq, completedAtMs: nil, completeSeq: nil, outcome: .pending))
            return id
        }
    }

    /// Records how operation `id` ended.
    public func complete(_ id: Int, _ outcome: Outcome) {
        let at = now()
        contents.withLock { c in
            c.seq += 1
            c.operations[id].completedAtMs = at
            c.operations[id].completeSeq = c.seq
            c.operations[id].outcome = outcome
            if let view = outcome.view, c.operations[id].leaseID == nil { c.operations[id].leaseID = view.leaseID }
        }
    }

    /// Records a cleanup delivery; `build` gets its seq and time.
    public func deliver(_ build: (UInt64, Int64) -> Delivery) {
        let at = now()
        contents.withLock { c in
            c.seq += 1
            c.deliveries.append(build(c.seq, at))
        }
    }

    /// Records that `node` was seen leading `term` (once per node and term).
    public func observeLeader(_ node: String, term: UInt64) {
        contents.withLock { c in
            guard c.lastLeaderTerm[node] != term else { return }
            c.lastLeaderTerm[node] = term
            c.seq += 1
            c.leaders.append(LeaderObservation(node: node, term: term, seq: c.seq))
        }
    }

    public var operations: [ClientOperation] { contents.withLock { $0.operations } }
    public var deliveries: [Delivery] { contents.withLock { $0.deliveries } }
    public var leaderObservations: [LeaderObservation] { contents.withLock { $0.leaders } }
}

extension Outcome {
    /// The lease an `ok` answer carried.
    public var view: LeaseView? {
        if case .ok(let view) = self { return view }
        return nil
    }
}
