import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// A `GRPCServer` as a lifecycle `Service`: serves until graceful shutdown,
/// then stops accepting RPCs and lets in-flight ones finish.
public struct GRPCServerService: Service {
    public let server: GRPCServer<HTTP2ServerTransport.Posix>
    /// Closed first on shutdown so `WatchLeases` streams end and do not hold
    /// the drain up.
    let events: EventHub?

    public init(server: GRPCServer<HTTP2ServerTransport.Posix>, events: EventHub? = nil) {
        self.server = server
        self.events = events
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            events?.close()
            server.beginGracefulShutdown()
        }
    }
}
