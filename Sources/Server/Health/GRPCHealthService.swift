import GCProto
import GRPCCore

/// `grpc.health.v1.Health` on the client port, answering from
/// ``NodeHealth``: service `""` and `distributed_gc.DistributedGCService`
/// report readiness (as `/readyz`), service `liveness` reports liveness (as
/// `/healthz`). Any other service is `NOT_FOUND`, as the protocol asks.
public struct GRPCHealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    let health: NodeHealth
    /// How often `Watch` re-checks.
    var watchInterval: Duration = .seconds(1)

    public init(health: NodeHealth) {
        self.health = health
    }

    static let readinessNames: Set<String> = ["", "distributed_gc.DistributedGCService"]
    static let livenessName = "liveness"

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = await status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service.prefix(100))': ask for '' (readiness), 'distributed_gc.DistributedGCService' or 'liveness'")
        }
        return Self.response(status)
    }

    public func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        var response = Grpc_Health_V1_HealthListResponse()
        for name in Self.readinessNames.union([Self.livenessName]) {
            if let status = await status(of: name) { response.statuses[name] = Self.response(status) }
        }
        return response
    }

    public func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
                      context: ServerContext) async throws {
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
        while !Task.isCancelled {
            let status = await status(of: request.service) ?? .serviceUnknown
            if status != last {
                try await response.write(Self.response(status))
                last = status
            }
            try await Task.sleep(for: watchInterval)
        }
    }

    func status(of service: String) async -> Grpc_Health_V1_HealthCheckResponse.ServingStatus? {
        if Self.readinessNames.contains(service) { return await health.readiness().ok ? .serving : .notServing }
        if service == Self.livenessName { return health.liveness().ok ? .serving : .notServing }
        return nil
    }

    static func response(_ status: Grpc_Health_V1_HealthCheckResponse.ServingStatus) -> Grpc_Health_V1_HealthCheckResponse {
        var r = Grpc_Health_V1_HealthCheckResponse()
        r.status = status
        return r
    }
}
