import GRPCCore

/// An authenticated caller of the client port and what the policy lets it do.
public struct Caller: Hashable, Sendable {
    /// Its identity (certificate URI SAN or common name, or a token's identity).
    public var identity: String
    public var grant: AuthPolicy.Grant

    public init(identity: String, grant: AuthPolicy.Grant) {
        self.identity = identity
        self.grant = grant
    }

    public var isOperator: Bool { grant.roles.contains(.operator) }
    /// Reads every service's leases (readers and operators).
    public var readsEverything: Bool { isOperator || grant.roles.contains(.reader) }

    /// May create, renew or release leases of `serviceID`.
    public func mayWrite(_ serviceID: String) -> Bool { isOperator || grant.services.contains(serviceID) }

    /// May read leases of `serviceID`.
    public func mayRead(_ serviceID: String) -> Bool { readsEverything || grant.services.contains(serviceID) }

    /// The services whose leases a list or watch returns (nil: all).
    public var readableServices: Set<String>? { readsEverything ? nil : grant.services }
}

/// A permission a call needs; its name is what `PERMISSION_DENIED` reports.
public enum Permission: String, Hashable, Sendable {
    case leasesWrite = "leases.write"
    case leasesRead = "leases.read"
    case leasesForceRelease = "leases.force_release"
    case deadLettersRetry = "dead_letters.retry"
    case clusterRead = "cluster.read"
    case clusterAdmin = "cluster.admin"
    case health = "health"
    /// Server reflection (`grpc.reflection.v1[alpha].ServerReflection`):
    /// any authenticated caller. It reveals the API's schema, which is
    /// public in the repository's proto/ anyway, and no lease, service or
    /// member; unauthenticated callers are still refused.
    case reflection = "reflection"

    /// Whether `caller` holds this permission for some service (per-service
    /// checks of lease calls happen where the service id is known).
    func isHeld(by caller: Caller) -> Bool {
        switch self {
        case .leasesWrite, .leasesRead, .health, .reflection: true
        case .clusterRead: caller.readsEverything
        case .leasesForceRelease, .deadLettersRetry, .clusterAdmin: caller.isOperator
        }
    }

    /// The permission each client-port method needs. Methods not listed
    /// need the operator role (new methods are closed until classified).
    static func required(service: String, method: String) -> Permission {
        switch (service, method) {
        case ("distributed_gc.DistributedGCService", "CreateLease"),
             ("distributed_gc.DistributedGCService", "RenewLease"),
             ("distributed_gc.DistributedGCService", "RenewLeases"),
             ("distributed_gc.DistributedGCService", "KeepAlive"),
             ("distributed_gc.DistributedGCService", "ReleaseLease"):
            .leasesWrite
        case ("distributed_gc.DistributedGCService", "GetLease"),
             ("distributed_gc.DistributedGCService", "ListLeases"),
             ("distributed_gc.DistributedGCService", "WatchLeases"),
             ("distributed_gc.DistributedGCService", "GetMetrics"):
            .leasesRead
        case ("distributed_gc.DistributedGCService", "HealthCheck"), ("grpc.health.v1.Health", _):
            .health
        case ("distributed_gc.DistributedGCService", "ForceReleaseLease"):
            .leasesForceRelease
        case ("distributed_gc.DistributedGCService", "RetryDeadLetters"):
            .deadLettersRetry
        case ("distributed_gc.ClusterService", "GetClusterStatus"):
            .clusterRead
        case ("grpc.reflection.v1.ServerReflection", "ServerReflectionInfo"),
             ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"):
            .reflection
        default:
            .clusterAdmin
        }
    }
}

/// `ServerContext.transportSpecific` once the caller is authenticated: the
/// caller, and the transport's own context (its peer certificate).
public struct AuthenticatedContext: ServerContext.TransportSpecific {
    public var caller: Caller
    public var transport: (any ServerContext.TransportSpecific)?
}

extension ServerContext {
    /// The authenticated caller, when authorization is on.
    public var caller: Caller? { (transportSpecific as? AuthenticatedContext)?.caller }
}

extension RPCError {
    /// `PERMISSION_DENIED` naming the missing permission and the caller.
    static func denied(_ permission: Permission, _ caller: Caller, _ detail: String = "") -> RPCError {
        let on = detail.isEmpty ? "" : " on \(detail)"
        return RPCError(code: .permissionDenied, message: "permission '\(permission.rawValue)'\(on) is not granted to identity '\(caller.identity)' by the authorization policy (GC_AUTH_POLICY_FILE)")
    }
}
