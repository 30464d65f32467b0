/// Runs every checker over a run's history and final state.
///
/// The checkers are sound: each violation they report is a broken promise
/// given the bounds (no false alarms from timing the harness cannot see);
/// they are not complete.
public struct HistoryChecker: Sendable {
    public var bounds: CheckBounds
    public var linearizability: LinearizabilityChecker

    public init(bounds: CheckBounds, linearizability: LinearizabilityChecker = LinearizabilityChecker()) {
        self.bounds = bounds
        self.linearizability = linearizability
    }

    /// What the checkers found.
    public struct Report: Sendable {
        public var violations: [Violation]
        /// Leases whose linearizability search ran out of budget.
        public var undecidedLeases: Int
        /// Deliveries beyond the first successful one per cleanup job.
        public var duplicateDeliveries: Int

        public var passed: Bool { violations.isEmpty }
    }

    /// - Parameters:
    ///   - settledAtMs: true time when `final` was read.
    public func check(operations: [ClientOperation], deliveries: [Delivery], leaders: [LeaderObservation],
                      final: FinalState, settledAtMs: Int64) -> Report {
        let (linearizable, undecided) = linearizability.check(operations)
        var violations = linearizable
        violations += lostWrites(operations, final)
        violations += unsafeCleanups(operations, deliveries, leaders)
        let (eventual, duplicates) = missingCleanups(deliveries, final)
        violations += eventual
        violations += expiryTiming(operations, final, settledAtMs: settledAtMs)
        violations += fencing(operations)
        return Report(violations: violations, undecidedLeases: undecided, duplicateDeliveries: duplicates)
    }

    // MARK: b. No acknowledged write lost

    func lostWrites(_ operations: [ClientOperation], _ final: FinalState) -> [Violation] {
        var violations: [Violation] = []
        for op in operations {
            guard case .ok(let view) = op.outcome, let id = op.leaseID else { continue }
            let after = final.leases[id]
            switch op.kind {
            case .create:
                if after == nil {
                    violations.append(Violation(.noLostWrites, "lease \(id) was created (op \(op.id) via \(op.node)) but is missing from the final state"))
                }
            case .release:
                if let after, after.view.state != .released {
                    violations.append(Violation(.noLostWrites, "lease \(id) was released (op \(op.id) via \(op.node)) but ends \(after.view.state.rawValue)"))
                }
            case .renew:
                if let view, let after, after.view.state != .released, after.view.expiresAtMs < view.expiresAtMs {
                    violations.append(Violation(.noLostWrites, "lease \(id) was renewed to \(view.expiresAtMs) ms (op \(op.id) via \(op.node)) but ends with expiry \(after.view.expiresAtMs) ms:\n" + history(of: id, in: operations)))
                }
            case .get, .staleGet:
                break
            }
        }
        return violations
    }

    // MARK: c. No cleanup of a held object; none from a non-leader

    func unsafeCleanups(_ operations: [ClientOperation], _ deliveries: [Delivery], _ leaders: [LeaderObservation]) -> [Violation] {
        var violations: [Violation] = []
        let byLease = Dictionary(grouping: operations.filter { $0.leaseID != nil }, by: { $0.leaseID! })
        var leasesByIncarnation: [String: [String]] = [:]
        for op in operations where op.kind == .create {
            if let view = op.view { leasesByIncarnation["\(view.object)#\(view.incarnation)", default: []].append(view.leaseID) }
        }
        for delivery in deliveries {
            if bounds.deliveriesCarryConfirmation {
                if let confirmation = delivery.confirmation {
                    if !confirmation.wasLeader {
                        violations.append(Violation(.safeCleanup, "\(delivery.node) delivered the cleanup of \(delivery.object) (incarnation \(delivery.incarnation)) after a leadership check it began as a follower (term \(confirmation.term))"))
                    }
                    if let newer = leaders.first(where: { $0.node != delivery.node && $0.term > confirmation.term && $0.seq < confirmation.startSeq }) {
                        violations.append(Violation(.safeCleanup, "\(delivery.node) delivered the cleanup of \(delivery.object) on a leadership check of term \(confirmation.term) begun after \(newer.node) was seen leading term \(newer.term)"))
                    }
                } else {
                    violations.append(Violation(.safeCleanup, "\(delivery.node) delivered the cleanup of \(delivery.object) without confirming its leadership first"))
                }
            }
            for leaseID in leasesByIncarnation["\(delivery.object)#\(delivery.incarnation)"] ?? [] {
                let ops = byLease[leaseID] ?? []
                // A release that may have happened before the delivery ends the lease.
                let released = ops.contains { $0.kind == .release && $0.invokeSeq < delivery.seq && !isRefusal($0.outcome) }
                if released { continue }
                for grant in ops where grant.isAcknowledgedGrant {
                    let heldUntil = grant.invokedAtMs + grant.durationMs + bounds.graceMs - bounds.clockErrorMs
                    if delivery.atMs < heldUntil {
                        violations.append(Violation(.safeCleanup, "\(delivery.node) delivered the cleanup of \(delivery.object) (incarnation \(delivery.incarnation)) at \(delivery.atMs) ms, but lease \(leaseID) was granted at \(grant.invokedAtMs) ms for \(grant.durationMs) ms (op \(grant.id)) and not released: it was held until at least \(heldUntil) ms"))
                        break
                    }
                }
            }
        }
        return violations
    }

    // MARK: d. Every unheld object cleaned or dead-lettered, once per incarnation

    func missingCleanups(_ deliveries: [Delivery], _ final: FinalState) -> ([Violation], Int) {
        var violations: [Violation] = []
        var jobsByIncarnation: [String: [FinalState.Job]] = [:]
        for job in final.jobs { jobsByIncarnation["\(job.object)#\(job.incarnation)", default: []].append(job) }
        for (key, jobs) in jobsByIncarnation where jobs.count > 1 {
            violations.append(Violation(.eventualCleanup, "\(key) has \(jobs.count) cleanup jobs (\(jobs.map(\.id))); one per incarnation"))
        }
        for job in final.jobs where job.state == .pending {
            violations.append(Violation(.eventualCleanup, "cleanup job \(job.id) of \(job.object) (incarnation \(job.incarnation)) is still pending after the cluster settled (attempts: \(job.attempts))"))
        }
        // Objects whose leases all ended must have a finished job for their
        // latest incarnation.
        let leasesByObject = Dictionary(grouping: final.leases.values, by: \.view.object)
        for (object, leases) in leasesByObject where !leases.contains(where: { $0.view.state == .active }) {
            guard let latest = leases.map(\.view.incarnation).max() else { continue }
            let jobs = jobsByIncarnation["\(object)#\(latest)"] ?? []
            if !jobs.contains(where: { $0.state == .succeeded || $0.state == .deadLettered }) {
                let all = final.jobs.filter { $0.object == object }.map { "job \($0.id) incarnation \($0.incarnation) \($0.state.rawValue) (lease \($0.leaseID))" }
                let held = leases.sorted { $0.view.incarnation < $1.view.incarnation }.map { "\($0.view.leaseID) incarnation \($0.view.incarnation) \($0.view.state.rawValue) ended \($0.endedAtMs.map(String.init) ?? "-")" }
                violations.append(Violation(.eventualCleanup, "\(object) is no longer held but incarnation \(latest) has no finished cleanup; its jobs: \(all); its leases: \(held)"))
            }
        }
        let byKey = Dictionary(grouping: deliveries, by: \.idempotencyKey)
        var duplicates = 0
        for job in final.jobs where job.state == .succeeded {
            let successes = (byKey[job.idempotencyKey] ?? []).filter(\.succeeded).count
            if successes == 0 {
                violations.append(Violation(.eventualCleanup, "cleanup job \(job.id) of \(job.object) is recorded as succeeded, but its target never answered success (key \(job.idempotencyKey))"))
            }
            duplicates += max(0, successes - 1)
        }
        // The idempotency key is stable: one per incarnation, the job's.
        let deliveriesByIncarnation = Dictionary(grouping: deliveries, by: { "\($0.object)#\($0.incarnation)" })
        for (key, sent) in deliveriesByIncarnation {
            let keys = Set(sent.map(\.idempotencyKey))
            if keys.count > 1 {
                violations.append(Violation(.eventualCleanup, "\(key) was delivered under \(keys.count) idempotency keys: \(keys.sorted())"))
            } else if let job = jobsByIncarnation[key]?.first, let sentKey = keys.first, sentKey != job.idempotencyKey {
                violations.append(Violation(.eventualCleanup, "\(key) was delivered with key \(sentKey), but its job's key is \(job.idempotencyKey)"))
            }
        }
        return (violations, duplicates)
    }

    // MARK: e. Expiry neither early nor unreasonably late

    func expiryTiming(_ operations: [ClientOperation], _ final: FinalState, settledAtMs: Int64) -> [Violation] {
        var violations: [Violation] = []
        let byLease = Dictionary(grouping: operations.filter { $0.leaseID != nil }, by: { $0.leaseID! })
        let error = bounds.clockErrorMs
        for (leaseID, ops) in byLease {
            let grants = ops.filter(\.isAcknowledgedGrant)
            guard !grants.isEmpty else { continue }
            // Observations that the lease had passed its expiry (renewal
            // refused) or been reaped (read as expired), by their completion.
            for obs in ops {
                guard let completedAt = obs.completedAtMs, let completeSeq = obs.completeSeq else { continue }
                var withGrace: Bool
                switch (obs.kind, obs.outcome) {
                case (.renew, .refused(.expired, _)), (.release, .refused(.expired, _)): withGrace = false
                case (.get, .ok(let view?)) where view.state == .expired: withGrace = true
                case (.staleGet, .ok(let view?)) where view.state == .expired: withGrace = true
                default: continue
                }
                for grant in grants where grant.completeSeq.map({ $0 < obs.invokeSeq }) ?? false {
                    let earliest = grant.invokedAtMs + grant.durationMs + (withGrace ? bounds.graceMs : 0) - error
                    if completedAt < earliest {
                        violations.append(Violation(.expiryTiming, "lease \(leaseID) was seen \(withGrace ? "expired" : "past its expiry") at \(completedAt) ms (op \(obs.id) via \(obs.node), seq \(completeSeq)), but op \(grant.id) granted it at \(grant.invokedAtMs) ms for \(grant.durationMs) ms: not before \(earliest) ms"))
                        break
                    }
                }
            }
            guard let after = final.leases[leaseID] else { continue }
            if after.view.state == .expired, let ended = after.endedAtMs {
                let granted = grants.map { $0.invokedAtMs + $0.durationMs }.max() ?? 0
                let earliest = granted + bounds.graceMs - error
                if ended < earliest {
                    violations.append(Violation(.expiryTiming, "lease \(leaseID) expired at \(ended) ms but was granted until \(granted) ms (+ grace − clock error = \(earliest) ms)"))
                }
                let due = after.view.expiresAtMs + bounds.graceMs
                let deadline = bounds.expiryDeadline(due: due)
                if ended > deadline + error {
                    violations.append(Violation(.expiryTiming, "lease \(leaseID) was due at \(due) ms (expiry + grace) but expired only at \(ended) ms, after \(deadline) ms (\(bounds.expiryLatencyMs) ms after it, or after the faults that overlapped the wait)"))
                }
            }
        }
        for lease in final.leases.values where lease.view.state == .active {
            let due = lease.view.expiresAtMs + bounds.graceMs
            if settledAtMs > bounds.expiryDeadline(due: due) + error {
                violations.append(Violation(.expiryTiming, "lease \(lease.view.leaseID) is still active at \(settledAtMs) ms, though due at \(due) ms"))
            }
        }
        return violations
    }

    // MARK: f. Fencing tokens strictly increase

    func fencing(_ operations: [ClientOperation]) -> [Violation] {
        var violations: [Violation] = []
        let grants = operations.filter(\.isAcknowledgedGrant)
        for (object, ops) in Dictionary(grouping: grants, by: \.object) {
            let sorted = ops.sorted { $0.invokeSeq < $1.invokeSeq }
            for b in sorted {
                guard let bView = b.view else { continue }
                for a in sorted where (a.completeSeq ?? .max) < b.invokeSeq {
                    guard let aView = a.view else { continue }
                    if aView.fencingToken >= bView.fencingToken {
                        violations.append(Violation(.fencing, "\(object): op \(a.id) got fencing token \(aView.fencingToken) and finished before op \(b.id) began, which got \(bView.fencingToken)"))
                    }
                    if aView.incarnation > bView.incarnation {
                        violations.append(Violation(.fencing, "\(object): op \(a.id) saw incarnation \(aView.incarnation) and finished before op \(b.id) began, which saw \(bView.incarnation)"))
                    }
                }
            }
        }
        return violations
    }

    /// One lease's operations, for a violation's message.
    func history(of lease: String, in operations: [ClientOperation]) -> String {
        linearizability.describe(operations.filter { $0.leaseID == lease })
    }

    private func isRefusal(_ outcome: Outcome) -> Bool {
        if case .refused = outcome { return true }
        return false
    }
}
