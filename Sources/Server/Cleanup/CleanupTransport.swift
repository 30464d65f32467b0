import LeaseFSM

/// What a cleanup target receives (docs/original-product.md "Cleanup Request Format", plus
/// the fields that make deliveries safe to repeat).
public struct CleanupRequest: Hashable, Sendable, Codable {
    public var leaseID: String
    public var objectID: String
    /// E.g. `"WebsocketSession"`, as in the original contract.
    public var objectType: String
    public var serviceID: String
    public var metadata: [String: String]
    public var payload: String
    /// The object's incarnation: a target that recreates objects under the
    /// same id compares it to ignore a late cleanup of an older incarnation.
    public var incarnation: UInt64
    public var fencingToken: UInt64
    /// Stable across every attempt of this cleanup (also sent as the
    /// `Idempotency-Key` header).
    public var idempotencyKey: String
    /// 1 for the first attempt.
    public var attempt: UInt32

    enum CodingKeys: String, CodingKey {
        case leaseID = "lease_id", objectID = "object_id", objectType = "object_type", serviceID = "service_id"
        case metadata, payload, incarnation, fencingToken = "fencing_token", idempotencyKey = "idempotency_key", attempt
    }

    public init(job: CleanupJob) {
        leaseID = job.leaseID.rawValue
        objectID = job.object.id
        objectType = job.object.type.cleanupName
        serviceID = job.serviceID
        metadata = job.metadata
        payload = job.spec.payload
        incarnation = job.incarnation
        fencingToken = job.fencingToken
        idempotencyKey = job.idempotencyKey
        attempt = job.attempts + 1
    }
}

/// How one delivery attempt ended.
public enum CleanupAttemptResult: Hashable, Sendable {
    case succeeded
    /// `permanent` failures cannot succeed on retry and dead-letter at once.
    case failed(reason: String, permanent: Bool)
}

/// Delivers cleanup requests to targets. Implementations never throw: every
/// failure is an outcome that is recorded and retried.
public protocol CleanupTransport: Sendable {
    func deliver(_ request: CleanupRequest, to target: CleanupSpec.Target, timeout: Duration) async -> CleanupAttemptResult
    /// Releases connections; called once at graceful shutdown, after the
    /// last delivery.
    func shutdown()
}

extension CleanupTransport {
    public func shutdown() {}
}
