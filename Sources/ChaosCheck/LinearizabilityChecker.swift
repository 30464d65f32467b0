/// Wing–Gong style search for a linearization of one lease's operations.
///
/// Histories are partitioned by lease (P-compositionality), so each search
/// is small. Operations whose outcome is unknown may be linearized anywhere
/// after their invocation or left out. The search is bounded; a history it
/// cannot decide within the budget is reported as undecided, not as a
/// violation.
public struct LinearizabilityChecker: Sendable {
    public enum Verdict: Hashable, Sendable {
        case linearizable
        case notLinearizable
        case undecided
    }

    /// States explored per lease before giving up.
    public var budget: Int

    public init(budget: Int = 200_000) {
        self.budget = budget
    }

    /// Checks every lease's history; returns violations and how many leases
    /// were undecided.
    public func check(_ operations: [ClientOperation]) -> (violations: [Violation], undecided: Int) {
        let byLease = Dictionary(grouping: operations.filter { $0.leaseID != nil && $0.kind != .staleGet }, by: { $0.leaseID! })
        var violations: [Violation] = []
        var undecided = 0
        for (lease, ops) in byLease.sorted(by: { $0.key < $1.key }) {
            // A lease is only known through an acknowledged create.
            guard ops.contains(where: { $0.kind == .create }) else { continue }
            switch verdict(ops) {
            case .linearizable: break
            case .undecided: undecided += 1
            case .notLinearizable:
                violations.append(Violation(.linearizable, "lease \(lease) has no linearization:\n" + describe(ops)))
            }
        }
        return (violations, undecided)
    }

    /// The verdict for one lease's operations.
    public func verdict(_ operations: [ClientOperation]) -> Verdict {
        let ops = operations.sorted { $0.invokeSeq < $1.invokeSeq }
        var search = Search(ops: ops, budget: budget)
        let found = search.run(done: Bits(count: ops.count), state: .absent)
        if found { return .linearizable }
        return search.exhausted ? .undecided : .notLinearizable
    }

    func describe(_ ops: [ClientOperation]) -> String {
        ops.sorted { $0.invokeSeq < $1.invokeSeq }.map { op in
            let ret = op.completeSeq.map { "\($0)" } ?? "∞"
            return "  [\(op.invokeSeq)…\(ret)] t=\(op.invokedAtMs)…\(op.completedAtMs.map { "\($0)" } ?? "?") ms client \(op.client) via \(op.node): \(op.kind.rawValue) → \(op.outcome)"
        }.joined(separator: "\n")
    }
}

/// A fixed-size set of operation indexes.
struct Bits: Hashable {
    var words: [UInt64]

    init(count: Int) { words = Array(repeating: 0, count: (count + 63) / 64) }

    func contains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    func inserting(_ i: Int) -> Bits {
        var copy = self
        copy.words[i >> 6] |= 1 << UInt64(i & 63)
        return copy
    }
}

private struct Search {
    struct Key: Hashable {
        var done: Bits
        var state: LeaseModel
    }

    let ops: [ClientOperation]
    var visited: Set<Key> = []
    var budget: Int
    var exhausted = false

    init(ops: [ClientOperation], budget: Int) {
        self.ops = ops
        self.budget = budget
    }

    /// Whether the operations not in `done` can be linearized from `state`.
    mutating func run(done: Bits, state: LeaseModel) -> Bool {
        // The earliest return among required (definite) operations not yet
        // placed: nothing invoked after it can come before it.
        var horizon = UInt64.max
        var anyRequired = false
        for (i, op) in ops.enumerated() where !done.contains(i) && op.outcome.isDefinite {
            anyRequired = true
            horizon = min(horizon, op.completeSeq ?? .max)
        }
        if !anyRequired { return true }
        guard visited.insert(Key(done: done, state: state)).inserted else { return false }
        budget -= 1
        if budget <= 0 {
            exhausted = true
            return false
        }
        for (i, op) in ops.enumerated() where !done.contains(i) && op.invokeSeq < horizon {
            for next in state.apply(op) where run(done: done.inserting(i), state: next) {
                return true
            }
            if exhausted { return false }
            // An operation with an unknown outcome may never have happened.
            if !op.outcome.isDefinite, run(done: done.inserting(i), state: state) { return true }
            if exhausted { return false }
        }
        return false
    }
}
