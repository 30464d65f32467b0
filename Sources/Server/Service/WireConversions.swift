import GCProto
import GRPCCore
import LeaseFSM
import SwiftProtobuf

/// Conversions between the state machine's types and the wire messages.
extension Google_Protobuf_Timestamp {
    init(_ t: WallTime) {
        let seconds = t.milliseconds >= 0 ? t.milliseconds / 1000 : (t.milliseconds - 999) / 1000
        self.init(seconds: seconds, nanos: Int32((t.milliseconds - seconds * 1000) * 1_000_000))
    }
}

extension ObjectType {
    /// The state machine's type for a wire value; nil for values this build does not know.
    init?(wire: DistributedGc_ObjectType) {
        guard let t = ObjectType(rawValue: Int32(clamping: wire.rawValue)) else { return nil }
        self = t
    }

    var wire: DistributedGc_ObjectType { DistributedGc_ObjectType(rawValue: Int(rawValue)) ?? .unknown }
}

extension Lease.State {
    init?(wire: DistributedGc_LeaseState) {
        switch wire {
        case .active: self = .active
        case .expired: self = .expired
        case .released: self = .released
        case .UNRECOGNIZED: return nil
        }
    }

    var wire: DistributedGc_LeaseState {
        switch self {
        case .active: .active
        case .expired: .expired
        case .released: .released
        }
    }
}

extension LeaseCleanupState {
    init?(wire: DistributedGc_CleanupState) {
        guard let s = LeaseCleanupState(rawValue: Int32(clamping: wire.rawValue)) else { return nil }
        self = s
    }

    var wire: DistributedGc_CleanupState { DistributedGc_CleanupState(rawValue: Int(rawValue)) ?? .cleanupNone }

    /// The wire enum value's name, for messages.
    var wireName: String {
        switch self {
        case .none: "CLEANUP_NONE"
        case .pending: "CLEANUP_PENDING"
        case .succeeded: "CLEANUP_SUCCEEDED"
        case .deadLettered: "CLEANUP_DEAD_LETTERED"
        case .superseded: "CLEANUP_SUPERSEDED"
        }
    }
}

extension CleanupSpec {
    /// The spec a wire config asks for; nil when it names no endpoint and no payload.
    init?(wire c: DistributedGc_CleanupConfig) {
        guard !(c.cleanupEndpoint.isEmpty && c.cleanupHTTPEndpoint.isEmpty && c.cleanupPayload.isEmpty) else { return nil }
        self.init(httpEndpoint: c.cleanupHTTPEndpoint, grpcEndpoint: c.cleanupEndpoint, payload: c.cleanupPayload,
                  maxRetries: c.maxRetries, retryDelaySeconds: c.retryDelaySeconds)
    }

    var wire: DistributedGc_CleanupConfig {
        var c = DistributedGc_CleanupConfig()
        c.cleanupHTTPEndpoint = httpEndpoint
        c.cleanupEndpoint = grpcEndpoint
        c.cleanupPayload = payload
        c.maxRetries = maxRetries
        c.retryDelaySeconds = retryDelaySeconds
        return c
    }
}

extension ReadConsistency {
    /// The consistency a request asks for: anything but STALE is linearizable.
    init(wire: DistributedGc_ReadConsistency) {
        self = wire == .stale ? .stale : .linearizable
    }
}

extension DistributedGc_LeaseInfo {
    /// The wire view of a lease and its cleanup at wall time `asOf`: an
    /// active lease whose `expires_at` has passed is reported as EXPIRED
    /// (it can no longer be renewed; the reaper will record its end).
    init(_ detail: LeaseDetail, asOf: WallTime) {
        let lease = detail.lease
        self.init()
        leaseID = lease.id.rawValue
        objectID = lease.object.id
        objectType = lease.object.type.wire
        serviceID = lease.serviceID
        state = (lease.isActive && lease.expiresAt <= asOf) ? .expired : lease.state.wire
        createdAt = .init(lease.createdAt)
        expiresAt = .init(lease.expiresAt)
        lastRenewedAt = .init(lease.lastRenewedAt)
        metadata = lease.metadata
        if let spec = lease.cleanup { cleanupConfig = spec.wire }
        renewalCount = lease.renewalCount
        fencingToken = lease.fencingToken
        incarnation = lease.incarnation
        cleanupState = detail.cleanupState.wire
        if let job = detail.cleanupJob {
            cleanupAttempts = job.attempts
            lastCleanupError = job.lastError
        }
        leaseDurationSeconds = lease.durationSeconds
        if let ended = lease.endedAt { endedAt = .init(ended) }
    }
}

extension DistributedGc_LeaseEvent {
    init(_ e: LeaseEvent) {
        self.init()
        index = e.index
        position = e.position
        kind = DistributedGc_LeaseEvent.Kind(rawValue: Int(e.kind.rawValue)) ?? .unspecified
        leaseID = e.leaseID.rawValue
        objectID = e.object.id
        objectType = e.object.type.wire
        serviceID = e.serviceID
        incarnation = e.incarnation
        fencingToken = e.fencingToken
        at = .init(e.at)
        if let expires = e.expiresAt { expiresAt = .init(expires) }
        reason = e.reason
        attempt = e.attempt
    }
}

extension LeaseError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .permissionDenied: .permissionDenied
        case .failedPrecondition: .failedPrecondition
        case .resourceExhausted: .resourceExhausted
        case .alreadyExists: .alreadyExists
        default: .unknown
        }
    }

    public var rpcErrorMessage: String { message }
}

extension StoreError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code { .unavailable }
    public var rpcErrorMessage: String { message }
}

extension DistributedGc_LeaseInfo {
    /// Encoded size in bytes (for reply budgets).
    var serializedSize: Int { (try? serializedBytes() as [UInt8])?.count ?? 0 }
}
