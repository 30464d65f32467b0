/// The sequential specification of one lease, for the linearizability check.
///
/// Time is not modelled: a lease may pass its expiry (``lapsed``) and then be
/// reaped (``expired``) between any two operations. When that may happen is
/// the expiry-timing checker's business; this model pins down order: nothing
/// after a release or expiry sees the lease active, a renewal's new expiry is
/// what later reads return, a lease never comes back.
///
/// An expiry of `nil` is one set by a renewal whose answer was lost: any
/// value, pinned by the next read that shows one.
enum LeaseModel: Hashable, Sendable {
    case absent
    case active(expiresAtMs: Int64?)
    /// Past its expiry but not reaped yet: renewals and releases are refused.
    case lapsed(expiresAtMs: Int64?)
    case expired(expiresAtMs: Int64?)
    case released

    /// This state and those time alone can lead to.
    var timeSuccessors: [LeaseModel] {
        switch self {
        case .active(let e): [self, .lapsed(expiresAtMs: e), .expired(expiresAtMs: e)]
        case .lapsed(let e): [self, .expired(expiresAtMs: e)]
        default: [self]
        }
    }

    /// The states after `op` took effect here, answering as it did; empty if
    /// that answer is impossible from this state. An operation whose outcome
    /// is unknown is tried here as "took effect"; the checker also tries
    /// leaving it out.
    func apply(_ op: ClientOperation) -> [LeaseModel] {
        var next: Set<LeaseModel> = []
        for state in timeSuccessors {
            if let after = state.step(op) { next.insert(after) }
        }
        return Array(next)
    }

    private func step(_ op: ClientOperation) -> LeaseModel? {
        switch (op.kind, op.outcome) {
        case (.create, .ok(let view?)):
            return self == .absent ? .active(expiresAtMs: view.expiresAtMs) : nil
        case (.renew, .ok(let view?)):
            if case .active = self { return .active(expiresAtMs: view.expiresAtMs) }
            return nil
        case (.release, .ok):
            if case .active = self { return .released }
            return nil
        case (.renew, .refused(let why, _)), (.release, .refused(let why, _)):
            switch why {
            case .expired:
                if case .lapsed = self { return self }
                if case .expired = self { return self }
                return nil
            case .released: return self == .released ? self : nil
            case .notFound: return self == .absent ? self : nil
            case .other: return self
            }
        case (.renew, .unknown), (.renew, .pending):
            if case .active = self { return .active(expiresAtMs: nil) }
            return nil
        case (.release, .unknown), (.release, .pending):
            if case .active = self { return .released }
            return nil
        case (.get, .ok(let view?)):
            return pinned(by: view)
        case (.get, .ok(nil)):
            return self == .absent ? self : nil
        default:
            // Failed reads, stale reads and malformed records change nothing.
            return self
        }
    }

    /// This state with a read's answer: nil if the read cannot have seen it.
    private func pinned(by view: LeaseView) -> LeaseModel? {
        func same(_ e: Int64?) -> Bool { e == nil || e == view.expiresAtMs }
        switch (self, view.state) {
        case (.active(let e), .active) where same(e): return .active(expiresAtMs: view.expiresAtMs)
        case (.lapsed(let e), .active) where same(e): return .lapsed(expiresAtMs: view.expiresAtMs)
        case (.expired(let e), .expired) where same(e): return .expired(expiresAtMs: view.expiresAtMs)
        case (.released, .released): return self
        default: return nil
        }
    }
}
