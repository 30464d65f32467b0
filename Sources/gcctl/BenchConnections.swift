import GCClient
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// Opens `perEndpoint` gRPC clients (each its own HTTP/2 connection) to every
/// endpoint for the duration of `body`.
///
/// The clients are ordered round-robin across endpoints (endpoint 0, 1, ...,
/// then the second client of endpoint 0, ...), so handing workers the
/// clients in turn spreads them evenly over the nodes.
enum BenchConnections {
    static func with<Result: Sendable>(
        endpoints: [String], perEndpoint: Int, security: ClientSecurity = .plaintext,
        _ body: @Sendable ([BenchClient]) async throws -> Result
    ) async throws -> Result {
        var clients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
        for _ in 0..<perEndpoint {
            for endpoint in endpoints {
                let (host, port) = try NodeConnection.parseEndpoint(endpoint)
                let transport = try HTTP2ClientTransport.Posix(
                    target: resolvableTarget(host: host, port: port), transportSecurity: security.transportSecurity())
                clients.append(GRPCClient(transport: transport, interceptors: security.interceptors))
            }
        }
        let running = clients
        return try await withThrowingDiscardingTaskGroup { group in
            for client in running {
                group.addTask { try await client.runConnections() }
            }
            defer { for client in running { client.beginGracefulShutdown() } }
            return try await body(running.map { BenchClient(wrapping: $0) })
        }
    }
}
