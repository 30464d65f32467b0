import SwiftProtobuf

/// The log entry encoding of commands (proto/lease_fsm.proto, `FsmCommand`).
extension StampedCommand {
    /// The newest command schema this code reads and writes. Readers accept
    /// this and older.
    ///
    /// 2 added ``LeaseCommand/renewals(_:)``. Each entry says the oldest
    /// schema that can read it (1 for every other command), so a node of an
    /// older build refuses a renewals entry by its version, and still reads
    /// everything else.
    public static let encodingVersion: UInt32 = 2

    /// The oldest schema that holds this command.
    var requiredVersion: UInt32 {
        if case .renewals = command { return 2 }
        return 1
    }

    /// The command as a log entry's bytes.
    public func encoded() -> [UInt8] {
        var m = DistributedGc_Fsm_FsmCommand()
        m.version = requiredVersion
        m.stampMillis = stamp.milliseconds
        if let origin {
            m.clientID = origin.clientID
            m.sequence = origin.sequence
            m.firstUnacknowledged = origin.firstUnacknowledged
        }
        switch command {
        case .create(let c):
            var r = DistributedGc_Fsm_CreateLeaseCommand()
            r.leaseIDSuffix = c.leaseIDSuffix
            r.object = .init(c.object)
            r.serviceID = c.serviceID
            r.durationSeconds = c.durationSeconds
            r.metadata = c.metadata
            if let spec = c.cleanup { r.cleanup = .init(spec) }
            m.create = r
        case .renew(let c):
            var r = DistributedGc_Fsm_RenewLeasesCommand()
            r.leaseIds = c.leaseIDs.map(\.rawValue)
            r.serviceID = c.serviceID
            r.extendSeconds = c.extendSeconds
            m.renew = r
        case .release(let c):
            var r = DistributedGc_Fsm_ReleaseLeaseCommand()
            r.leaseID = c.leaseID.rawValue
            r.serviceID = c.serviceID
            r.force = c.force
            r.reason = c.reason
            m.release = r
        case .expire(let c):
            var r = DistributedGc_Fsm_ExpireLeasesCommand()
            r.leaseIds = c.leaseIDs.map(\.rawValue)
            m.expire = r
        case .cleanupOutcome(let c):
            m.cleanupOutcome = .init(c)
        case .cleanupOutcomes(let outcomes):
            var r = DistributedGc_Fsm_CleanupOutcomesCommand()
            r.outcomes = outcomes.map(DistributedGc_Fsm_CleanupOutcomeCommand.init)
            m.cleanupOutcomes = r
        case .retryDeadLetters(let c):
            var r = DistributedGc_Fsm_RetryDeadLettersCommand()
            r.jobIds = c.jobIDs
            m.retryDeadLetters = r
        case .renewals(let items):
            var r = DistributedGc_Fsm_RenewalsCommand()
            r.items = items.map { item in
                var i = DistributedGc_Fsm_RenewalItem()
                i.leaseID = item.leaseID.rawValue
                i.serviceID = item.serviceID
                i.extendSeconds = item.extendSeconds
                return i
            }
            m.renewals = r
        }
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        do {
            return try m.serializedBytes(options: options)
        } catch {
            // proto3 with no required fields and no Any: encoding cannot fail.
            // Were it to, an empty entry would stop every node that applies it.
            preconditionFailure("a lease command failed to encode: \(error)")
        }
    }

    /// Decodes a log entry written by ``encoded()``.
    public init(decoding bytes: [UInt8]) throws(LeaseStateMachine.DecodingError) {
        let m: DistributedGc_Fsm_FsmCommand
        do {
            m = try DistributedGc_Fsm_FsmCommand(serializedBytes: bytes)
        } catch {
            throw LeaseStateMachine.DecodingError(message: "not a lease command (\(error))")
        }
        guard m.version >= 1, m.version <= Self.encodingVersion else {
            throw LeaseStateMachine.DecodingError(message: "command version \(m.version) is not supported")
        }
        let command: LeaseCommand
        switch m.command {
        case .create(let r):
            command = .create(.init(
                leaseIDSuffix: r.leaseIDSuffix, object: try ObjectKey(r.object), serviceID: r.serviceID,
                durationSeconds: r.durationSeconds, metadata: r.metadata,
                cleanup: r.hasCleanup ? CleanupSpec(r.cleanup) : nil))
        case .renew(let r):
            command = .renew(.init(leaseIDs: r.leaseIds.map(LeaseID.init), serviceID: r.serviceID, extendSeconds: r.extendSeconds))
        case .release(let r):
            var release = LeaseCommand.ReleaseLease(leaseID: LeaseID(r.leaseID), serviceID: r.serviceID)
            release.force = r.force
            release.reason = r.reason
            command = .release(release)
        case .expire(let r):
            command = .expire(.init(leaseIDs: r.leaseIds.map(LeaseID.init)))
        case .cleanupOutcome(let r):
            command = .cleanupOutcome(.init(r))
        case .cleanupOutcomes(let r):
            command = .cleanupOutcomes(r.outcomes.map(LeaseCommand.CleanupOutcome.init))
        case .retryDeadLetters(let r):
            command = .retryDeadLetters(.init(jobIDs: r.jobIds))
        case .renewals(let r):
            command = .renewals(r.items.map { .init(leaseID: LeaseID($0.leaseID), serviceID: $0.serviceID, extendSeconds: $0.extendSeconds) })
        case nil:
            throw LeaseStateMachine.DecodingError(message: "command has no body")
        }
        let origin = m.clientID.isEmpty ? nil
            : ClientOrigin(clientID: m.clientID, sequence: m.sequence, firstUnacknowledged: m.firstUnacknowledged)
        self.init(command, stamp: WallTime(milliseconds: m.stampMillis), origin: origin)
    }
}

extension DistributedGc_Fsm_CleanupOutcomeCommand {
    init(_ c: LeaseCommand.CleanupOutcome) {
        self.init()
        jobID = c.jobID
        attempt = c.attempt
        switch c.result {
        case .succeeded:
            succeeded = true
        case .failed(let error, let retryAfter, let permanent):
            self.error = error
            retryAfterMillis = retryAfter
            self.permanent = permanent
        }
    }
}

extension LeaseCommand.CleanupOutcome {
    init(_ r: DistributedGc_Fsm_CleanupOutcomeCommand) {
        self.init(
            jobID: r.jobID, attempt: r.attempt,
            result: r.succeeded ? .succeeded : .failed(error: r.error, retryAfterMilliseconds: r.retryAfterMillis, permanent: r.permanent))
    }
}
