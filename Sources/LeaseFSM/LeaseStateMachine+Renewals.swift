/// Renewals of many services in one entry (``LeaseCommand/renewals(_:)``).
///
/// A thin loop over the single renew: each item is checked as a renew of
/// its one lease would be (``LeaseLimits/validate(_:)-(LeaseCommand.Renewal)``)
/// and applied by ``renew(_:index:events:)``, so the rules (owner check,
/// ended or overdue lease, duration range) and their error codes are the
/// ones a `RenewLease` gets, and one item's failure leaves the others alone.
extension LeaseStateMachine {
    mutating func renew(_ items: [LeaseCommand.Renewal], index: UInt64,
                        events: inout EventRecorder) -> [Result<Renewed, LeaseError>] {
        // An item repeated within the entry gets the first one's answer, as a
        // lease named twice in one RenewLeases does (one renewal per index,
        // so fencing tokens still strictly increase per renewal).
        var done: [LeaseCommand.Renewal: Result<Renewed, LeaseError>] = [:]
        done.reserveCapacity(items.count)
        return items.map { item in
            if let earlier = done[item] { return earlier }
            let result: Result<Renewed, LeaseError>
            if let error = limits.validate(item) {
                result = .failure(error)
            } else {
                let single = LeaseCommand.RenewLeases(leaseIDs: [item.leaseID], serviceID: item.serviceID,
                                                      extendSeconds: item.extendSeconds)
                result = renew(single, index: index, events: &events).first.map { outcome in
                    outcome.result.map { Renewed(expiresAt: $0.expiresAt, fencingToken: $0.fencingToken) }
                } ?? .failure(LeaseError(.invalidArgument, "lease_id: must not be empty", field: "lease_id"))
            }
            done[item] = result
            return result
        }
    }
}
