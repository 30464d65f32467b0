import Testing
@testable import LeaseFSM

/// A fixed starting time for tests (2023-11-14T22:13:20Z).
let t0 = WallTime(seconds: 1_700_000_000)

func key(_ id: String, _ type: ObjectType = .blobStorage) -> ObjectKey {
    ObjectKey(type: type, id: id)
}

/// A cleanup spec with an HTTP target.
func httpCleanup(_ path: String = "cleanup", payload: String = "", maxRetries: UInt32 = 0,
                 retryDelaySeconds: UInt64 = 0) -> CleanupSpec {
    CleanupSpec(httpEndpoint: "http://owner:8080/\(path)", payload: payload, maxRetries: maxRetries,
                retryDelaySeconds: retryDelaySeconds)
}

extension WallTime {
    func plus(seconds: Int64) -> WallTime { adding(milliseconds: seconds * 1000) }
    func plus(ms: Int64) -> WallTime { adding(milliseconds: ms) }
}

extension ApplyOutput {
    var error: LeaseError? {
        if case .failure(let e) = result { return e }
        return nil
    }
    var createdLease: Lease? {
        if case .success(.created(let l)) = result { return l }
        return nil
    }
    var renewOutcomes: [RenewOutcome]? {
        if case .success(.renewed(let o)) = result { return o }
        return nil
    }
    var releasedLease: Lease? {
        if case .success(.released(let l)) = result { return l }
        return nil
    }
    var expiredIDs: [LeaseID]? {
        if case .success(.expired(let ids)) = result { return ids }
        return nil
    }
    /// Whether the command was a recorded cleanup outcome (the job may be nil when stale).
    var isCleanupRecorded: Bool {
        if case .success(.cleanupRecorded) = result { return true }
        return false
    }
    var recordedJob: CleanupJob? {
        if case .success(.cleanupRecorded(let j)) = result { return j }
        return nil
    }
    var retriedJobs: [JobID]? {
        if case .success(.deadLettersRetried(let ids)) = result { return ids }
        return nil
    }
}

extension RenewOutcome {
    var lease: Lease? { try? result.get() }
    var error: LeaseError? {
        if case .failure(let e) = result { return e }
        return nil
    }
}

/// Everything the queries show of a state machine, to compare two machines
/// by their behaviour (not only by `==`, which ignores the derived indexes).
struct Observation: Equatable, CustomStringConvertible {
    var leases: [Lease]
    var cleanupStates: [LeaseCleanupState]
    var activeCount: Int
    var pendingCount: Int
    var deadLetteredCount: Int
    var retainedCount: Int
    var byService: [String: Int]
    var byType: [ObjectType: Int]
    var due: [CleanupJob]
    var deadLettered: [CleanupJob]
    var expirable: [LeaseID]

    init(_ fsm: LeaseStateMachine) {
        leases = allLeases(fsm)
        cleanupStates = leases.map { fsm.cleanupState(of: $0) }
        activeCount = fsm.activeLeaseCount
        pendingCount = fsm.pendingCleanupCount
        deadLetteredCount = fsm.deadLetteredCleanupCount
        retainedCount = fsm.retainedLeaseCount
        byService = fsm.activeLeasesByService
        byType = fsm.activeLeasesByType
        let far = fsm.now.plus(seconds: 10_000_000)
        due = fsm.dueCleanupJobs(asOf: far, limit: .max)
        deadLettered = fsm.deadLetteredJobs
        expirable = fsm.expirableLeases(asOf: far, limit: .max)
    }

    var description: String {
        "Observation(\(leases.count) leases, active \(activeCount), pending \(pendingCount), dead \(deadLetteredCount))"
    }
}

/// Every retained lease, in id order, read in one page.
func allLeases(_ fsm: LeaseStateMachine, _ filter: LeaseStateMachine.LeaseFilter = .init()) -> [Lease] {
    fsm.listLeases(filter, after: nil, limit: .max).leases
}

/// Drives a state machine the way a log does: every command gets the next
/// index, stamped with the harness clock unless a stamp is given.
struct Harness {
    var fsm: LeaseStateMachine
    private(set) var index: UInt64 = 0
    var clock: WallTime
    private var suffixCounter: UInt64 = 0

    init(limits: LeaseLimits = .defaults, clock: WallTime = t0) {
        fsm = LeaseStateMachine(limits: limits)
        self.clock = clock
    }

    var limits: LeaseLimits { fsm.limits }
    /// The index the next command will get.
    var nextIndex: UInt64 { index + 1 }

    mutating func advance(seconds: Int64) { clock = clock.plus(seconds: seconds) }
    mutating func advance(ms: Int64) { clock = clock.plus(ms: ms) }

    /// Skips log entries (no-ops) so the next command lands at `index`.
    mutating func skip(to nextIndex: UInt64) {
        precondition(nextIndex > index + 1)
        index = nextIndex - 1
        fsm.skip(index: index)
    }

    @discardableResult
    mutating func apply(_ command: LeaseCommand, stamp: WallTime? = nil) -> ApplyOutput {
        index += 1
        return fsm.apply(StampedCommand(command, stamp: stamp ?? clock), index: index)
    }

    mutating func freshSuffix() -> String {
        suffixCounter += 1
        return String(suffixCounter, radix: 16)
    }

    mutating func createCommand(_ object: ObjectKey = key("obj"), service: String = "svc", duration: UInt64 = 60,
                                cleanup: CleanupSpec? = nil, metadata: [String: String] = [:],
                                suffix: String? = nil) -> LeaseCommand {
        .create(.init(leaseIDSuffix: suffix ?? freshSuffix(), object: object, serviceID: service,
                      durationSeconds: duration, metadata: metadata, cleanup: cleanup))
    }

    @discardableResult
    mutating func create(_ object: ObjectKey = key("obj"), service: String = "svc", duration: UInt64 = 60,
                         cleanup: CleanupSpec? = nil, metadata: [String: String] = [:], suffix: String? = nil,
                         stamp: WallTime? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Lease {
        let command = createCommand(object, service: service, duration: duration, cleanup: cleanup,
                                    metadata: metadata, suffix: suffix)
        let out = apply(command, stamp: stamp)
        return try #require(out.createdLease, "create refused: \(String(describing: out.error))",
                            sourceLocation: sourceLocation)
    }

    mutating func renew(_ ids: [LeaseID], service: String = "svc", extend: UInt64 = 0, stamp: WallTime? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> [RenewOutcome] {
        let out = apply(.renew(.init(leaseIDs: ids, serviceID: service, extendSeconds: extend)), stamp: stamp)
        return try #require(out.renewOutcomes, "renew refused: \(String(describing: out.error))",
                            sourceLocation: sourceLocation)
    }

    /// Renews one lease and returns its outcome.
    mutating func renew(_ id: LeaseID, service: String = "svc", extend: UInt64 = 0, stamp: WallTime? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> Result<Lease, LeaseError> {
        let outcomes = try renew([id], service: service, extend: extend, stamp: stamp, sourceLocation: sourceLocation)
        try #require(outcomes.count == 1, sourceLocation: sourceLocation)
        return outcomes[0].result
    }

    @discardableResult
    mutating func release(_ id: LeaseID, service: String = "svc", stamp: WallTime? = nil,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> Lease {
        let out = apply(.release(.init(leaseID: id, serviceID: service)), stamp: stamp)
        return try #require(out.releasedLease, "release refused: \(String(describing: out.error))",
                            sourceLocation: sourceLocation)
    }

    @discardableResult
    mutating func expire(_ ids: [LeaseID], stamp: WallTime? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> [LeaseID] {
        let out = apply(.expire(.init(leaseIDs: ids)), stamp: stamp)
        return try #require(out.expiredIDs, "expire refused: \(String(describing: out.error))",
                            sourceLocation: sourceLocation)
    }

    /// Records a cleanup outcome; returns the job after it (nil when the outcome was stale).
    @discardableResult
    mutating func outcome(_ job: JobID, attempt: UInt32, _ result: LeaseCommand.CleanupOutcome.Result,
                          stamp: WallTime? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> CleanupJob? {
        let out = apply(.cleanupOutcome(.init(jobID: job, attempt: attempt, result: result)), stamp: stamp)
        try #require(out.isCleanupRecorded, "outcome refused: \(String(describing: out.error))",
                     sourceLocation: sourceLocation)
        return out.recordedJob
    }

    @discardableResult
    mutating func retry(_ jobs: [JobID], stamp: WallTime? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> [JobID] {
        let out = apply(.retryDeadLetters(.init(jobIDs: jobs)), stamp: stamp)
        return try #require(out.retriedJobs, "retry refused: \(String(describing: out.error))",
                            sourceLocation: sourceLocation)
    }

    /// Runs `body` (which applies commands) and checks that it changed nothing
    /// but ``LeaseStateMachine/appliedIndex`` and ``LeaseStateMachine/now``.
    mutating func expectOnlyClockMoves(sourceLocation: SourceLocation = #_sourceLocation,
                                       _ body: (inout Harness) throws -> Void) rethrows {
        let before = fsm
        let observedBefore = Observation(fsm)
        try body(&self)
        var expected = before
        expected.appliedIndex = fsm.appliedIndex
        expected.now = fsm.now
        #expect(fsm.appliedIndex > before.appliedIndex, sourceLocation: sourceLocation)
        #expect(fsm == expected, "the command changed the replicated state", sourceLocation: sourceLocation)
        #expect(Observation(fsm) == observedBefore, "the command changed what queries show",
                sourceLocation: sourceLocation)
    }

    /// Applies a command that must be refused with `code` (and `field`), and
    /// checks that it changed nothing but the applied index and now.
    @discardableResult
    mutating func expectRefused(_ command: LeaseCommand, _ code: LeaseError.Code, field: String? = nil,
                                stamp: WallTime? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation) -> LeaseError? {
        var out: ApplyOutput?
        let stampUsed = stamp ?? clock
        let nowBefore = fsm.now
        expectOnlyClockMoves(sourceLocation: sourceLocation) { h in
            out = h.apply(command, stamp: stamp)
        }
        #expect(fsm.now == max(nowBefore, stampUsed), sourceLocation: sourceLocation)
        #expect(out?.events == [], sourceLocation: sourceLocation)
        let error = out?.error
        #expect(error?.code == code, "got \(String(describing: out?.result))", sourceLocation: sourceLocation)
        if let field {
            #expect(error?.field == field, "got \(String(describing: error))", sourceLocation: sourceLocation)
        }
        #expect(error?.message.isEmpty == false, sourceLocation: sourceLocation)
        return error
    }

    /// Creates a lease with a cleanup target and releases it, returning the job it created.
    mutating func makeJob(_ object: ObjectKey = key("garbage"), service: String = "svc",
                          cleanup: CleanupSpec = httpCleanup(maxRetries: 2),
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> CleanupJob {
        let lease = try create(object, service: service, cleanup: cleanup, sourceLocation: sourceLocation)
        let released = try release(lease.id, service: service, sourceLocation: sourceLocation)
        let id = try #require(released.cleanupJobID, "releasing the last lease created no job",
                              sourceLocation: sourceLocation)
        return try #require(fsm.job(id), sourceLocation: sourceLocation)
    }
}

extension Result where Failure == LeaseError {
    var error: LeaseError? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
