import GCProto
import GRPCCore

/// Keeps a set of leases renewed, and says when one may have been lost.
///
/// Every lease is renewed when a third of its TTL has passed since the last
/// renewal was sent, many at a time (`RenewLeases` calls of up to
/// ``maxBatch`` leases of one service, each bounded by a third of the TTL). A lease is **in jeopardy** when no renewal succeeded
/// within its TTL minus ``safetyMargin``, counted from when that renewal was
/// *sent* (the cluster's expiry is at least that late): the holder must stop
/// using the object, since it may have expired and been cleaned. A lease the
/// cluster reports gone (expired, released, unknown) is dropped and reported
/// as lost.
///
/// ```swift
/// let keeper = LeaseKeeper(client: client) { event in
///     print("stop using \(event.leaseID): \(event.reason)")
/// }
/// async let keeping: Void = keeper.run()
/// await keeper.keep(leaseID: lease.leaseID, serviceID: "uploader", ttl: .seconds(60))
/// ```
public actor LeaseKeeper {
    /// Why a lease may no longer be held.
    public struct Jeopardy: Sendable, Hashable {
        public enum Reason: Sendable, Hashable, CustomStringConvertible {
            /// No renewal succeeded within TTL minus the safety margin.
            case noRenewalWithin(Duration)
            /// The cluster refused the renewal (NOT_FOUND, FAILED_PRECONDITION, ...).
            case lost(code: String, message: String)

            public var description: String {
                switch self {
                case .noRenewalWithin(let d): "no successful renewal within \(d); the lease may have expired"
                case .lost(let code, let message): "renewal refused (\(code)): \(message)"
                }
            }
        }

        public var leaseID: String
        public var reason: Reason
    }

    private struct Held {
        var serviceID: String
        var ttl: Duration
        /// When the last successful renewal (or the create) was sent.
        var confirmedAt: ContinuousClock.Instant
        var lastSentAt: ContinuousClock.Instant
        var renewing = false
        var inJeopardy = false
    }

    /// Leases renewed per call at most: small enough that each call is quick
    /// (its deadline is a third of the TTL), several calls run in parallel.
    public static let maxBatch = 250

    public let client: GCClient
    /// Taken off the TTL before a lease counts as in jeopardy.
    public let safetyMargin: Duration
    private let onJeopardy: @Sendable (Jeopardy) -> Void
    private var held: [String: Held] = [:]

    /// - Parameters:
    ///   - safetyMargin: how long before its possible expiry a lease counts
    ///     as in jeopardy (clock drift, the time to stop using the object).
    ///   - onJeopardy: called once per lease each time it falls into jeopardy,
    ///     and when the cluster says it is gone.
    public init(client: GCClient, safetyMargin: Duration = .seconds(2), onJeopardy: @escaping @Sendable (Jeopardy) -> Void) {
        self.client = client
        self.safetyMargin = safetyMargin
        self.onJeopardy = onJeopardy
    }

    /// Starts keeping a lease the caller just created or renewed, whose
    /// request was sent at `confirmedAt` (default: now, which is later than
    /// the truth and so errs towards early jeopardy only by the call's time).
    public func keep(leaseID: String, serviceID: String, ttl: Duration, confirmedAt: ContinuousClock.Instant = .now) {
        held[leaseID] = Held(serviceID: serviceID, ttl: ttl, confirmedAt: confirmedAt, lastSentAt: confirmedAt)
    }

    /// Stops renewing a lease (release it separately).
    public func stopKeeping(_ leaseID: String) {
        held[leaseID] = nil
    }

    /// Leases being kept.
    public var leaseIDs: [String] { Array(held.keys) }

    /// Leases currently in jeopardy.
    public var leasesInJeopardy: [String] { held.filter(\.value.inJeopardy).map(\.key) }

    /// Renews and watches until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let now = ContinuousClock.now
                checkJeopardy(now: now)
                for (serviceID, due) in dueRenewals(now: now) {
                    for start in stride(from: 0, to: due.ids.count, by: Self.maxBatch) {
                        let chunk = Array(due.ids[start..<min(start + Self.maxBatch, due.ids.count)])
                        group.addTask { await self.renew(chunk, serviceID: serviceID, sentAt: now, within: due.within) }
                    }
                }
                do { try await Task.sleep(for: tickInterval) } catch { break }
            }
            group.cancelAll()
        }
    }

    /// Checked often enough to renew at TTL/3 and to notice jeopardy promptly.
    private var tickInterval: Duration {
        let shortest = held.values.map(\.ttl).min() ?? .seconds(1)
        return min(max(shortest / 20, .milliseconds(10)), .milliseconds(500))
    }

    /// Leases to renew now, by service, with how long their call may take
    /// (a third of the shortest TTL among them: the next renewal is due then).
    private func dueRenewals(now: ContinuousClock.Instant) -> [String: (ids: [String], within: Duration)] {
        var due: [String: (ids: [String], within: Duration)] = [:]
        for (id, var lease) in held where !lease.renewing && now - lease.lastSentAt >= lease.ttl / 3 {
            lease.renewing = true
            lease.lastSentAt = now
            held[id] = lease
            var entry = due[lease.serviceID] ?? (ids: [], within: lease.ttl / 3)
            entry.ids.append(id)
            entry.within = min(entry.within, lease.ttl / 3)
            due[lease.serviceID] = entry
        }
        return due
    }

    private func renew(_ ids: [String], serviceID: String, sentAt: ContinuousClock.Instant, within: Duration) async {
        let results: [DistributedGc_RenewLeaseResult]
        do {
            results = try await client.renewLeases(ids, serviceID: serviceID, within: within)
        } catch {
            // Nothing confirmed: the next tick tries again, and jeopardy fires
            // if this goes on past TTL minus the margin.
            for id in ids { held[id]?.renewing = false }
            return
        }
        var answered = Set<String>()
        for result in results {
            answered.insert(result.leaseID)
            guard var lease = held[result.leaseID] else { continue }
            lease.renewing = false
            if result.success {
                lease.confirmedAt = max(lease.confirmedAt, sentAt)
                lease.inJeopardy = false
                held[result.leaseID] = lease
            } else if ["NOT_FOUND", "FAILED_PRECONDITION", "PERMISSION_DENIED"].contains(result.errorCode) {
                held[result.leaseID] = nil
                onJeopardy(Jeopardy(leaseID: result.leaseID, reason: .lost(code: result.errorCode, message: result.errorMessage)))
            } else {
                held[result.leaseID] = lease
            }
        }
        for id in ids where !answered.contains(id) { held[id]?.renewing = false }
    }

    private func checkJeopardy(now: ContinuousClock.Instant) {
        for (id, var lease) in held where !lease.inJeopardy && now >= lease.confirmedAt + lease.ttl - safetyMargin {
            lease.inJeopardy = true
            held[id] = lease
            onJeopardy(Jeopardy(leaseID: id, reason: .noRenewalWithin(lease.ttl - safetyMargin)))
        }
    }
}
