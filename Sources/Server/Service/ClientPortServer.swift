import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// The gRPC server of a node's client port: the lease API's hot unary calls
/// (``DistributedGCService/directRoutes()``) served directly by
/// ``DirectUnaryTransport``, everything else (streams, lists, operator and
/// admin calls, grpc.health.v1, reflection, backup) by GRPCCore's server with
/// the same metrics and authorization as interceptors.
public typealias ClientPortServer = GRPCServer<DirectUnaryTransport<HTTP2ServerTransport.Posix>>

extension GRPCServer where Transport == DirectUnaryTransport<HTTP2ServerTransport.Posix> {
    /// A client port server on `transport` for `leases` and `services`.
    ///
    /// - Parameters:
    ///   - authenticator: when set, every call is authenticated and checked
    ///     against the policy; nil serves every caller.
    ///   - direct: false sends every call through GRPCCore (for tests that
    ///     hold the two paths to the same answers).
    static func clientPort(
        transport: HTTP2ServerTransport.Posix, leases: DistributedGCService, services: [any RegistrableRPCService],
        metrics: SidecarMetrics, authenticator: Authenticator?, direct: Bool = true
    ) -> ClientPortServer {
        let authorization = authenticator.map { AuthorizationInterceptor(authenticator: $0, metrics: metrics) }
        // Metrics first, so calls the authorization refuses are counted too.
        let interceptors: [any ServerInterceptor] = [GRPCMetricsInterceptor(metrics: metrics)] + (authorization.map { [$0] } ?? [])
        let wrapped = DirectUnaryTransport(
            inner: transport, routes: direct ? leases.directRoutes() : [:], metrics: metrics, authorization: authorization)
        return GRPCServer(
            transport: wrapped, services: ClientPortReflection.adding(to: [leases] + services), interceptors: interceptors)
    }

    /// The address the client port listens on, once it does.
    public var listeningAddress: GRPCNIOTransportCore.SocketAddress? {
        get async throws { try await transport.inner.listeningAddress }
    }
}

extension DistributedGCService {
    typealias Method = DistributedGc_DistributedGCService.Method

    /// The unary calls a node serves most, answered without GRPCCore's
    /// per-call layers (``DirectUnaryTransport``).
    func directRoutes<Bytes: GRPCContiguousBytes & Sendable>() -> [MethodDescriptor: DirectUnaryRoute<Bytes>] {
        [
            Method.CreateLease.descriptor: DirectUnaryRoute(createLease),
            Method.RenewLease.descriptor: DirectUnaryRoute(renewLease),
            Method.RenewLeases.descriptor: DirectUnaryRoute(renewLeases),
            Method.ReleaseLease.descriptor: DirectUnaryRoute(releaseLease),
            Method.GetLease.descriptor: DirectUnaryRoute(getLease),
            Method.HealthCheck.descriptor: DirectUnaryRoute(healthCheck),
        ]
    }
}
