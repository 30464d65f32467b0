import GCProto
import GRPCCore
import Synchronization

/// Keeps a set of leases renewed, and says when one may have been lost.
///
/// Every lease is renewed when a third of its TTL has passed since the last
/// renewal was sent. Renewals go on one `KeepAlive` stream per keeper (each
/// answered once it is durable on the cluster); the stream is reopened, on
/// the next node, with backoff, when it breaks or an answer is overdue (a
/// third of the TTL, at most the client's call timeout), and the renewals it
/// left unanswered are sent again at once. Against a server without
/// `KeepAlive` (it answers UNIMPLEMENTED) the keeper falls back to unary
/// `RenewLeases` calls of up to ``maxBatch`` leases of one service, each
/// bounded by a third of the TTL. A lease is **in jeopardy** when no renewal
/// succeeded within its TTL minus ``safetyMargin``, counted from when that
/// renewal was *sent* (the cluster's expiry is at least that late): the
/// holder must stop using the object, since it may have expired and been
/// cleaned. A lease the cluster reports gone (expired, released, unknown, or
/// another service's) is dropped and reported as lost.
///
/// ```swift
/// let keeper = LeaseKeeper(client: client) { event in
///     print("stop using \(event.leaseID): \(event.reason)")
/// }
/// async let keeping: Void = keeper.run()
/// let sent = ContinuousClock.now
/// let lease = try await client.createLease(objectID: "blob-17", objectType: .blobStorage,
///                                          serviceID: "uploader", duration: .seconds(60))
/// await keeper.keep(leaseID: lease.leaseID, serviceID: "uploader", ttl: .seconds(60), confirmedAt: sent)
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

    /// A renewal sent on the stream and not answered yet.
    private struct Sent {
        var leaseID: String
        var sentAt: ContinuousClock.Instant
        /// The answer is overdue after this: the stream is reopened.
        var overdueAt: ContinuousClock.Instant
    }

    /// The open stream's request side, nil while none is open.
    private var outbox: AsyncStream<DistributedGc_KeepAliveRequest>.Continuation?
    /// The task running the open stream (cancelled when an answer is overdue).
    private var streamTask: Task<KeepAliveStreamEnd, Never>?
    private var sent: [UInt64: Sent] = [:]
    private var nextRequestID: UInt64 = 1
    /// Answers on the open stream so far (a stream that answers resets the
    /// reconnect backoff).
    private var answersOnStream = 0
    /// Whether renewals go on the stream, or (a server without `KeepAlive`)
    /// in unary calls.
    private var useStream = true

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

    /// Starts keeping a lease the caller just created or renewed.
    ///
    /// - Parameters:
    ///   - ttl: the lease's duration; renewals ask for exactly this much
    ///     (whole seconds, at least 1), so the cluster's expiry and the
    ///     keeper's jeopardy clock agree.
    ///   - confirmedAt: when the create (or renewal) **request was sent**,
    ///     not when its answer came: the lease's expiry counts from a moment
    ///     after sending, so this errs on the safe side. Taking the answer's
    ///     time instead could make jeopardy fire late by the call's duration.
    public func keep(leaseID: String, serviceID: String, ttl: Duration, confirmedAt: ContinuousClock.Instant) {
        let ttl = Duration.seconds(max(1, ttl.components.seconds))
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
            group.addTask { await self.keepStreamOpen() }
            while !Task.isCancelled {
                let now = ContinuousClock.now
                checkJeopardy(now: now)
                if useStream {
                    sendDueOnStream(now: now)
                    reopenIfOverdue(now: now)
                } else {
                    for (key, ids) in dueRenewals(now: now) {
                        for start in stride(from: 0, to: ids.count, by: Self.maxBatch) {
                            let chunk = Array(ids[start..<min(start + Self.maxBatch, ids.count)])
                            group.addTask { await self.renew(chunk, key, sentAt: now) }
                        }
                    }
                }
                do { try await Task.sleep(for: tickInterval) } catch { break }
            }
            streamTask?.cancel()
            group.cancelAll()
        }
    }

    // MARK: The KeepAlive stream

    /// Opens the stream, and again whenever it ends, moving on to the next
    /// node with backoff; returns when cancelled, or for good when the server
    /// has no `KeepAlive` (the keeper then renews with unary calls).
    private func keepStreamOpen() async {
        var backoff = client.configuration.initialBackoff
        while !Task.isCancelled {
            let (requests, continuation) = AsyncStream.makeStream(of: DistributedGc_KeepAliveRequest.self)
            let client = self.client
            let task = Task { await client.keepAliveStream(requests) { answer in await self.answered(answer) } }
            attach(continuation, task)
            let end = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
            let answered = detach()
            switch end {
            case .unimplemented:
                useStream = false
                return
            case .closed, .failed:
                if answered > 0 { backoff = client.configuration.initialBackoff }
                do { try await Task.sleep(for: backoff * Double.random(in: 0.8...1.2)) } catch { return }
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    private func attach(_ continuation: AsyncStream<DistributedGc_KeepAliveRequest>.Continuation,
                        _ task: Task<KeepAliveStreamEnd, Never>) {
        outbox = continuation
        streamTask = task
        answersOnStream = 0
        // Due leases go out now rather than at the next tick.
        sendDueOnStream(now: .now)
    }

    /// The stream ended: renewals it left unanswered are due again at once
    /// (on the next stream). Returns how many answers the stream gave.
    private func detach() -> Int {
        outbox?.finish()
        outbox = nil
        streamTask = nil
        let now = ContinuousClock.now
        for entry in sent.values {
            guard var lease = held[entry.leaseID] else { continue }
            lease.renewing = false
            lease.lastSentAt = now - lease.ttl / 3
            held[entry.leaseID] = lease
        }
        sent = [:]
        return answersOnStream
    }

    /// Sends every due renewal on the open stream (none while none is open:
    /// they stay due).
    private func sendDueOnStream(now: ContinuousClock.Instant) {
        guard let outbox else { return }
        let callTimeout = client.configuration.callTimeout
        for (id, var lease) in held where !lease.renewing && now - lease.lastSentAt >= lease.ttl / 3 {
            lease.renewing = true
            lease.lastSentAt = now
            held[id] = lease
            var request = DistributedGc_KeepAliveRequest()
            request.requestID = nextRequestID
            request.leaseID = id
            request.serviceID = lease.serviceID
            // Exactly the TTL (whole seconds, at least 1; see keep(...)).
            request.extendDurationSeconds = UInt64(lease.ttl.components.seconds)
            sent[nextRequestID] = Sent(leaseID: id, sentAt: now, overdueAt: now + min(lease.ttl / 3, callTimeout))
            nextRequestID += 1
            outbox.yield(request)
        }
    }

    /// An answer overdue means the node is stuck or cut off: the stream is
    /// dropped and reopened on the next node.
    private func reopenIfOverdue(now: ContinuousClock.Instant) {
        guard let task = streamTask, sent.values.contains(where: { $0.overdueAt <= now }) else { return }
        client.moveOn(from: client.preferred.withLock { $0 })
        streamTask = nil
        task.cancel()
    }

    private func answered(_ answer: DistributedGc_KeepAliveResponse) {
        guard let entry = sent.removeValue(forKey: answer.requestID) else { return }
        answersOnStream += 1
        guard var lease = held[entry.leaseID] else { return }
        lease.renewing = false
        switch answer.result {
        case .renewed:
            lease.confirmedAt = max(lease.confirmedAt, entry.sentAt)
            lease.inJeopardy = false
            held[entry.leaseID] = lease
        case .error(let error) where Self.goneCodes.keys.contains(error.code):
            held[entry.leaseID] = nil
            onJeopardy(Jeopardy(leaseID: entry.leaseID, reason: .lost(code: Self.goneCodes[error.code] ?? "", message: error.message)))
        case .error, nil:
            // Not decided (no leader, a full queue): try again soon, well
            // before the next regular renewal.
            lease.lastSentAt = ContinuousClock.now - lease.ttl / 3 + min(lease.ttl / 3, .milliseconds(250))
            held[entry.leaseID] = lease
        }
    }

    /// Status codes (numbers on the wire) that mean the lease is gone for
    /// this holder, with the names ``Jeopardy/Reason/lost(code:message:)`` reports.
    private static let goneCodes: [UInt32: String] = [
        5: "NOT_FOUND", 7: "PERMISSION_DENIED", 9: "FAILED_PRECONDITION",
    ]

    // MARK: Unary fallback

    /// Checked often enough to renew at TTL/3 and to notice jeopardy promptly.
    private var tickInterval: Duration {
        let shortest = held.values.map(\.ttl).min() ?? .seconds(1)
        return min(max(shortest / 20, .milliseconds(10)), .milliseconds(500))
    }

    /// One renewal call's worth: leases of one service with one TTL.
    private struct RenewalGroup: Hashable {
        var serviceID: String
        var ttl: Duration
    }

    /// Leases to renew now, by service and TTL (each call extends by that TTL).
    private func dueRenewals(now: ContinuousClock.Instant) -> [RenewalGroup: [String]] {
        var due: [RenewalGroup: [String]] = [:]
        for (id, var lease) in held where !lease.renewing && now - lease.lastSentAt >= lease.ttl / 3 {
            lease.renewing = true
            lease.lastSentAt = now
            held[id] = lease
            due[RenewalGroup(serviceID: lease.serviceID, ttl: lease.ttl), default: []].append(id)
        }
        return due
    }

    /// Renews `ids` by exactly their TTL with one `RenewLeases` call, within
    /// a third of the TTL (the next renewal is due then, so a stuck call
    /// never delays it).
    private func renew(_ ids: [String], _ key: RenewalGroup, sentAt: ContinuousClock.Instant) async {
        let results: [DistributedGc_RenewLeaseResult]
        do {
            results = try await client.renewLeases(ids, serviceID: key.serviceID, extend: key.ttl, within: key.ttl / 3)
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
