import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import Logging
import Server

/// A node serving the client API on an ephemeral port, with a manual clock,
/// and a generated client connected to it.
struct TestNode {
    let sidecar: Sidecar
    let clock: ManualWallClock
    let client: DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>
    /// The connection `client` uses, for the node's other services.
    let connection: GRPCClient<HTTP2ClientTransport.Posix>

    /// Runs one reaper pass and one dispatch round at the clock's time.
    func reapAndDispatch() async throws {
        try await sidecar.reaper.reapOnce(now: clock.now())
        try await sidecar.dispatcher.dispatchDue(now: clock.now())
    }
}

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Starts a node on 127.0.0.1:0, runs `body` against it, then shuts it down.
func withTestNode(
    configure: (inout SidecarConfig) -> Void = { _ in },
    directUnaryCalls: Bool = true,
    transport: any CleanupTransport = RecordingTransport(),
    _ body: (TestNode) async throws -> Void
) async throws {
    var config = SidecarConfig()
    config.host = "127.0.0.1"
    config.port = 0
    config.metricsPort = 0
    config.limits.minDurationSeconds = 1
    config.limits.cleanupGraceSeconds = 0
    config.storageBackend = .memory
    configure(&config)
    let clock = ManualWallClock()
    let sidecar = try Sidecar(config: config, logger: quietLogger, clock: clock, transport: transport, seed: 7)
    // As in production: the server's tasks prefer the node's event loop.
    try await serving(sidecar.makeGRPCServer(directUnaryCalls: directUnaryCalls), executor: sidecar.eventLoop.executor) { address in
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: address.host, port: address.port), transportSecurity: .plaintext)
        ) { client in
            try await body(TestNode(sidecar: sidecar, clock: clock, client: .init(wrapping: client), connection: client))
        }
    }
}

/// Runs `server` (bound to an IPv4 address) for the duration of `body`,
/// which gets the address it listens on; then shuts it down. The server's
/// tasks prefer `executor` when one is given.
func serving(
    _ server: GRPCServer<HTTP2ServerTransport.Posix>,
    executor: (any TaskExecutor)? = nil,
    _ body: (SocketAddress.IPv4) async throws -> Void
) async throws {
    try await serving(server, address: { try await server.listeningAddress }, executor: executor, body)
}

/// Runs a client port `server` as ``serving(_:executor:_:)`` does.
func serving(
    _ server: ClientPortServer,
    executor: (any TaskExecutor)? = nil,
    _ body: (SocketAddress.IPv4) async throws -> Void
) async throws {
    try await serving(server, address: { try await server.listeningAddress }, executor: executor, body)
}

private func serving<Transport: ServerTransport>(
    _ server: GRPCServer<Transport>,
    address listeningAddress: @Sendable () async throws -> SocketAddress?,
    executor: (any TaskExecutor)?,
    _ body: (SocketAddress.IPv4) async throws -> Void
) async throws {
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask(executorPreference: executor) { try await server.serve() }
        guard let address = try await listeningAddress()?.ipv4 else {
            server.beginGracefulShutdown()
            throw TestFailure("server did not listen on an IPv4 address")
        }
        do {
            try await body(address)
        } catch {
            server.beginGracefulShutdown()
            throw error
        }
        server.beginGracefulShutdown()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `call` and returns the `RPCError` it threw, or nil if it succeeded.
func rpcError(_ call: () async throws -> some Any) async -> RPCError? {
    do {
        _ = try await call()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "not an RPCError: \(error)")
    }
}
