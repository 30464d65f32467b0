import ChaosCheck

/// Hand-written histories for the checker tests: operations are appended in
/// real-time order; `at` is true time in ms.
struct HistoryBuilder {
    private(set) var operations: [ClientOperation] = []
    private(set) var deliveries: [Delivery] = []
    private(set) var leaders: [LeaderObservation] = []
    private var seq: UInt64 = 0

    static let object = "DatabaseRow/orders-1"

    static func view(_ id: String, _ state: LeaseView.State, expires: Int64, token: UInt64 = 1, incarnation: UInt64 = 1,
                     object: String = object) -> LeaseView {
        LeaseView(leaseID: id, object: object, state: state, expiresAtMs: expires, fencingToken: token, incarnation: incarnation)
    }

    private mutating func next() -> UInt64 {
        seq += 1
        return seq
    }

    /// An operation that starts and ends before the next one begins.
    @discardableResult
    mutating func op(_ kind: ClientOperation.Kind, _ lease: String?, at: Int64, took: Int64 = 10, duration: Int64 = 3000,
                     object: String = object, client: Int = 0, _ outcome: Outcome) -> Int {
        let id = begin(kind, lease, at: at, duration: duration, object: object, client: client)
        end(id, at: at + took, outcome)
        return id
    }

    mutating func begin(_ kind: ClientOperation.Kind, _ lease: String?, at: Int64, duration: Int64 = 3000,
                        object: String = object, client: Int = 0) -> Int {
        let id = operations.count
        operations.append(ClientOperation(id: id, client: client, node: "n1", kind: kind, leaseID: lease, object: object,
                                    durationMs: duration, invokedAtMs: at, invokeSeq: next(), completedAtMs: nil,
                                    completeSeq: nil, outcome: .pending))
        return id
    }

    mutating func end(_ id: Int, at: Int64, _ outcome: Outcome) {
        operations[id].completedAtMs = at
        operations[id].completeSeq = next()
        operations[id].outcome = outcome
        // As the recorder does: a create learns its lease's id from the answer.
        if operations[id].leaseID == nil, let view = operations[id].view { operations[id].leaseID = view.leaseID }
    }

    mutating func deliver(object: String = object, incarnation: UInt64 = 1, lease: String, key: String = "k1", at: Int64,
                          succeeded: Bool = true, node: String = "n1", confirmation: Delivery.Confirmation?? = nil) {
        let seq = next()
        let confirm = confirmation ?? Delivery.Confirmation(startSeq: seq, wasLeader: true, term: 1)
        deliveries.append(Delivery(node: node, object: object, incarnation: incarnation, leaseID: lease, idempotencyKey: key,
                                   fencingToken: 1, attempt: 1, atMs: at, seq: seq, succeeded: succeeded, confirmation: confirm))
    }

    mutating func leader(_ node: String, term: UInt64) {
        leaders.append(LeaderObservation(node: node, term: term, seq: next()))
    }

    mutating func mark() -> UInt64 { next() }

    func check(final: FinalState, settledAt: Int64 = 100_000, clockError: Int64 = 0, grace: Int64 = 1000,
               disturbances: [ClosedRange<Int64>] = []) -> HistoryChecker.Report {
        let bounds = CheckBounds(clockErrorMs: clockError, graceMs: grace, expiryLatencyMs: 5000, disturbances: disturbances,
                                 deliveriesCarryConfirmation: true)
        return HistoryChecker(bounds: bounds).check(operations: operations, deliveries: deliveries, leaders: leaders,
                                                    final: final, settledAtMs: settledAt)
    }
}

extension HistoryChecker.Report {
    func broke(_ property: Violation.Property) -> Bool { violations.contains { $0.property == property } }
}
