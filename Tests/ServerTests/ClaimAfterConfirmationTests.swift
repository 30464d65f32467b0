import LeaseFSM
import Server
import Synchronization
import Testing

/// The dispatcher's view of a real store, with one committed change slipped
/// in while it confirms its leadership: after its first look at the due jobs
/// and before the confirmation returns, the way entries from a leader
/// elected while this node was briefly deposed (or any other commit) land
/// during the quorum round. Records what the dispatcher asked, in order.
final class ChangeDuringConfirmationStore: LeaseStore, MachineReadable {
    enum Call: Equatable, Sendable {
        /// A read whose answer was a list of cleanup jobs (their ids).
        case jobsRead([JobID])
        case otherRead
        case confirmLeadership
    }

    let inner: RaftLeaseStore
    /// Runs once, inside the first ``confirmLeadership()``, before the real
    /// confirmation.
    private let meanwhile: @Sendable (RaftLeaseStore) async throws -> Void
    private let state = Mutex<(calls: [Call], ran: Bool, failure: String?)>((calls: [], ran: false, failure: nil))

    init(inner: RaftLeaseStore, meanwhile: @escaping @Sendable (RaftLeaseStore) async throws -> Void) {
        self.inner = inner
        self.meanwhile = meanwhile
    }

    var calls: [Call] { state.withLock { $0.calls } }
    /// Why the change could not be committed, if it could not.
    var meanwhileFailure: String? { state.withLock { $0.failure } }

    var limits: LeaseLimits { inner.limits }
    var events: EventHub { inner.events }
    var mayRunCleanup: Bool { inner.mayRunCleanup }
    var healthProblem: String? { inner.healthProblem }

    func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        try await inner.propose(command, origin: origin)
    }

    func read<R: Sendable>(_ consistency: ReadConsistency, _ query: @Sendable (LeaseStateMachine) -> R) async throws -> R {
        let result = try await inner.read(consistency, query)
        let call: Call
        if let jobs = result as? [CleanupJob] { call = .jobsRead(jobs.map(\.id)) } else { call = .otherRead }
        state.withLock { $0.calls.append(call) }
        return result
    }

    func confirmLeadership() async -> Bool {
        let first = state.withLock { s in
            s.calls.append(.confirmLeadership)
            defer { s.ran = true }
            return !s.ran
        }
        if first {
            do {
                try await meanwhile(inner)
            } catch {
                state.withLock { $0.failure = "\(error)" }
            }
        }
        return await inner.confirmLeadership()
    }
}

/// `CleanupDispatcher.claimDueJobs` looks at the due jobs cheaply (a stale
/// read), confirms its leadership with a quorum, and then reads the due jobs
/// again: only that second read is claimed. This pins the second read. A job
/// that stops being due between the first look and the end of the
/// confirmation (its cleanup recorded as succeeded, or its object leased
/// again, by a leader elected while this node was briefly deposed, or by any
/// other committed change) must not be delivered; a job still due is.
///
/// The interleaving is forced, not waited for: the store handed to the
/// dispatcher commits the change from inside `confirmLeadership()`, i.e.
/// strictly after the first read and strictly before the read that follows
/// the confirmation.
@Suite("Claiming after the leadership confirmation")
struct ClaimAfterConfirmationTests {
    @Test("a job that stops being due while leadership is being confirmed is not claimed; one still due is")
    func jobEndedDuringConfirmationIsNotClaimed() async throws {
        let clock = ManualWallClock()
        let store = try await CleanupLimitsTests.makeStore(clock: clock)
        let endpoint = "http://cleaner.test/cleanup"

        // Three released leases: three cleanup jobs, all due now.
        var jobIDs: [String: JobID] = [:]
        for (i, name) in ["succeeded-elsewhere", "leased-again", "still-due"].enumerated() {
            let create = LeaseCommand.create(.init(
                leaseIDSuffix: "\(i + 1)", object: ObjectKey(type: .temporaryFile, id: name), serviceID: "svc",
                durationSeconds: 600, cleanup: CleanupSpec(httpEndpoint: endpoint, maxRetries: 3, retryDelaySeconds: 1)))
            guard case .created(let lease) = try await store.propose(create) else { throw TestFailure("\(name): not created") }
            guard case .released(let ended) = try await store.propose(.release(.init(leaseID: lease.id, serviceID: "svc"))),
                  let jobID = ended.cleanupJobID
            else { throw TestFailure("\(name): released without a cleanup job") }
            jobIDs[name] = jobID
        }
        let succeededElsewhere = try #require(jobIDs["succeeded-elsewhere"])
        let leasedAgain = try #require(jobIDs["leased-again"])
        let stillDue = try #require(jobIDs["still-due"])
        let allThree: Set<JobID> = [succeededElsewhere, leasedAgain, stillDue]
        let dueAtStart = try await store.read(.linearizable) { $0.dueCleanupJobs(asOf: clock.now(), limit: 10) }
        #expect(Set(dueAtStart.map(\.id)) == allThree, "all three jobs are due before the claim")

        // While the dispatcher confirms its leadership: another node's
        // delivery of the first job is recorded as a success, and the second
        // job's object is leased again (superseding its cleanup).
        let wrapped = ChangeDuringConfirmationStore(inner: store) { inner in
            let recorded = try await inner.propose(.cleanupOutcomes([
                .init(jobID: succeededElsewhere, attempt: 1, result: .succeeded),
            ]))
            guard case .cleanupsRecorded(let ids) = recorded, ids == [succeededElsewhere] else {
                throw TestFailure("the success was not recorded: \(recorded)")
            }
            let created = try await inner.propose(.create(.init(
                leaseIDSuffix: "4", object: ObjectKey(type: .temporaryFile, id: "leased-again"), serviceID: "svc",
                durationSeconds: 600)))
            guard case .created = created else { throw TestFailure("the object was not leased again: \(created)") }
        }
        let dispatcher = CleanupDispatcher(
            store: wrapped, transport: RecordingTransport(), timeout: .seconds(5),
            limits: CleanupLimits(maxConcurrency: 8, endpointConcurrency: 8, endpointRatePerSecond: 0),
            metrics: SidecarMetrics(), logger: quietLogger, seed: 1)

        let claimed = try await dispatcher.claimDueJobs(now: clock.now())

        #expect(wrapped.meanwhileFailure == nil, "the change during the confirmation failed: \(wrapped.meanwhileFailure ?? "")")
        // The first look did see all three as due (so claiming from it would
        // have sent the two that are no longer due), and the change landed
        // inside the one confirmation.
        let calls = wrapped.calls
        let firstReadAt = try #require(calls.firstIndex(where: { call in
            if case .jobsRead = call { return true }
            return false
        }), "the dispatcher never read the due jobs: \(calls)")
        let confirmedAt = try #require(calls.firstIndex(of: .confirmLeadership), "no leadership confirmation: \(calls)")
        if case .jobsRead(let firstLook) = calls[firstReadAt] {
            #expect(Set(firstLook) == allThree, "the first look saw \(firstLook)")
        }
        #expect(firstReadAt < confirmedAt, "the change must come after the first look: \(calls)")
        #expect(calls.filter({ $0 == .confirmLeadership }).count == 1, "\(calls)")

        #expect(claimed.map(\.id) == [stillDue],
                "claimed \(claimed.map(\.id)); only job \(stillDue) was still due after the confirmation")
        #expect(!claimed.contains(where: { $0.id == succeededElsewhere }), "a job whose cleanup already succeeded was claimed")
        #expect(!claimed.contains(where: { $0.id == leasedAgain }), "a superseded job (its object leased again) was claimed")
        #expect(dispatcher.inFlightCount == claimed.count)

        let states = try await store.read(.linearizable) { machine in
            (machine.job(succeededElsewhere)?.state, machine.job(leasedAgain)?.state, machine.job(stillDue)?.state)
        }
        #expect(states.0 == .succeeded)
        #expect(states.1 == .superseded)
        #expect(states.2 == .pending)
    }
}
