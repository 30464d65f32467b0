import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// A `GRPCServer` as a lifecycle `Service`: serves until graceful shutdown,
/// then stops accepting RPCs and lets in-flight ones finish.
public struct GRPCServerService<Transport: ServerTransport>: Service {
    public let server: GRPCServer<Transport>
    /// Closed first on shutdown so `WatchLeases` streams end and do not hold
    /// the drain up.
    let events: EventHub?
    /// Where the server's tasks (one per connection and per RPC) prefer to
    /// run: the event loop its transport uses (``NodeEventLoop``), or nil.
    let executor: (any TaskExecutor)?

    public init(server: GRPCServer<Transport>, events: EventHub? = nil, executor: (any TaskExecutor)? = nil) {
        self.server = server
        self.events = events
        self.executor = executor
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskExecutorPreference(executor) { try await server.serve() }
        } onGracefulShutdown: {
            events?.close()
            server.beginGracefulShutdown()
        }
    }
}
