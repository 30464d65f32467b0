import SwiftProtobuf

/// The encoding of a command's reply (proto/lease_fsm.proto,
/// `CommandReplyRecord`): what a leader returns to a node that forwarded a
/// client's write, and what a client session stores for retries.
public enum CommandReplyCoding {
    /// `reply` as bytes.
    public static func encode(_ reply: Result<CommandResult, LeaseError>) -> [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        // Encoding a message built only from our own values cannot fail.
        return (try? record(reply).serializedBytes(options: options)) ?? []
    }

    /// Decodes ``encode(_:)`` output.
    public static func decode(_ bytes: [UInt8]) throws(LeaseStateMachine.DecodingError) -> Result<CommandResult, LeaseError> {
        let r: DistributedGc_Fsm_CommandReplyRecord
        do {
            r = try DistributedGc_Fsm_CommandReplyRecord(serializedBytes: bytes)
        } catch {
            throw LeaseStateMachine.DecodingError(message: "not a command reply (\(error))")
        }
        return try reply(r)
    }

    static func record(_ reply: Result<CommandResult, LeaseError>) -> DistributedGc_Fsm_CommandReplyRecord {
        var r = DistributedGc_Fsm_CommandReplyRecord()
        switch reply {
        case .failure(let error):
            r.error = .init(error)
        case .success(.created(let lease)):
            r.created = .init(lease)
        case .success(.renewed(let outcomes)):
            var renewed = DistributedGc_Fsm_RenewedRecord()
            renewed.outcomes = outcomes.map { outcome in
                var o = DistributedGc_Fsm_RenewOutcomeRecord()
                o.leaseID = outcome.leaseID.rawValue
                switch outcome.result {
                case .success(let lease): o.lease = .init(lease)
                case .failure(let error): o.error = .init(error)
                }
                return o
            }
            r.renewed = renewed
        case .success(.released(let lease)):
            r.released = .init(lease)
        case .success(.expired(let ids)):
            var record = DistributedGc_Fsm_IdsRecord()
            record.leaseIds = ids.map(\.rawValue)
            r.expired = record
        case .success(.cleanupRecorded(let job)):
            var record = DistributedGc_Fsm_CleanupRecordedRecord()
            if let job { record.job = .init(job) }
            r.cleanupRecorded = record
        case .success(.deadLettersRetried(let ids)):
            var record = DistributedGc_Fsm_IdsRecord()
            record.jobIds = ids
            r.deadLettersRetried = record
        case .success(.cleanupsRecorded(let ids)):
            var record = DistributedGc_Fsm_IdsRecord()
            record.jobIds = ids
            r.cleanupsRecorded = record
        case .success(.renewals(let results)):
            var record = DistributedGc_Fsm_RenewalResultsRecord()
            record.results = results.map { result in
                var o = DistributedGc_Fsm_RenewalResultRecord()
                switch result {
                case .success(let renewed):
                    o.expiresAt = renewed.expiresAt.milliseconds
                    o.fencingToken = renewed.fencingToken
                case .failure(let error):
                    o.error = .init(error)
                }
                return o
            }
            r.renewals = record
        }
        return r
    }

    static func reply(_ r: DistributedGc_Fsm_CommandReplyRecord) throws(LeaseStateMachine.DecodingError) -> Result<CommandResult, LeaseError> {
        if r.hasError { return .failure(try LeaseError(r.error)) }
        switch r.result {
        case .created(let lease):
            return .success(.created(try Lease(lease)))
        case .renewed(let renewed):
            var outcomes: [RenewOutcome] = []
            for o in renewed.outcomes {
                let result: Result<Lease, LeaseError> = o.hasError ? .failure(try LeaseError(o.error)) : .success(try Lease(o.lease))
                outcomes.append(RenewOutcome(leaseID: LeaseID(o.leaseID), result: result))
            }
            return .success(.renewed(outcomes))
        case .released(let lease):
            return .success(.released(try Lease(lease)))
        case .expired(let ids):
            return .success(.expired(ids.leaseIds.map(LeaseID.init)))
        case .cleanupRecorded(let record):
            return .success(.cleanupRecorded(record.hasJob ? try CleanupJob(record.job) : nil))
        case .deadLettersRetried(let ids):
            return .success(.deadLettersRetried(ids.jobIds))
        case .cleanupsRecorded(let ids):
            return .success(.cleanupsRecorded(ids.jobIds))
        case .renewals(let record):
            var results: [Result<Renewed, LeaseError>] = []
            results.reserveCapacity(record.results.count)
            for o in record.results {
                results.append(o.hasError ? .failure(try LeaseError(o.error))
                    : .success(Renewed(expiresAt: WallTime(milliseconds: o.expiresAt), fencingToken: o.fencingToken)))
            }
            return .success(.renewals(results))
        case nil:
            throw LeaseStateMachine.DecodingError(message: "command reply has neither an error nor a result")
        }
    }
}

extension LeaseError {
    private static let codes: [(Code, Int32)] = [
        (.invalidArgument, 1), (.notFound, 2), (.permissionDenied, 3),
        (.failedPrecondition, 4), (.resourceExhausted, 5), (.alreadyExists, 6),
    ]

    init(_ r: DistributedGc_Fsm_ErrorRecord) throws(LeaseStateMachine.DecodingError) {
        guard let code = Self.codes.first(where: { $0.1 == r.code })?.0 else {
            throw LeaseStateMachine.DecodingError(message: "unknown error code \(r.code)")
        }
        self.init(code, r.message, field: r.hasField_p ? r.field : nil)
    }
}

extension DistributedGc_Fsm_ErrorRecord {
    init(_ e: LeaseError) {
        self.init()
        code = LeaseError.codeNumber(e.code)
        message = e.message
        if let f = e.field {
            field = f
            hasField_p = true
        }
    }
}

extension LeaseError {
    static func codeNumber(_ code: Code) -> Int32 {
        codes.first(where: { $0.0 == code })?.1 ?? 0
    }
}
