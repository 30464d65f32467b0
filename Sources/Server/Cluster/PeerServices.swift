import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// The peer protocol's server as a lifecycle `Service`. Peers' `Stream`
/// RPCs never end by themselves, so after asking for a graceful shutdown it
/// waits at most `drainTime` and then cancels what is left.
struct PeerServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    /// Where the server's tasks prefer to run (``NodeEventLoop``), or nil.
    var executor: (any TaskExecutor)?
    var drainTime: Duration = .milliseconds(500)

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: executor) { try await server.serve() }
            group.addTask {
                try? await gracefulShutdown()
                server.beginGracefulShutdown()
                try await Task.sleep(for: drainTime)
            }
            // Whichever ends first (the server stopped, or the drain time
            // passed after shutdown began) ends the other.
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Opens the connections to the peers for as long as the node runs.
struct PeerTransportService: Service {
    let transport: PeerTransport

    func run() async throws {
        transport.start()
        try? await gracefulShutdown()
        transport.stop()
    }
}

/// Hands leadership over when the node is asked to stop (listed last in the
/// service group, so it is the first to hear of the shutdown, while the
/// node still serves).
struct LeadershipHandoffService: Service {
    let admin: ClusterAdmin

    func run() async throws {
        try? await gracefulShutdown()
        await admin.handOffLeadership()
    }
}
