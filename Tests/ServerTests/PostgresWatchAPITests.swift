import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
import PostgresNIO
import Server
import Testing

/// `WatchLeases` through the gRPC API in PostgreSQL mode: two sidecars (a
/// store, an event hub fed from the table, the lease service) over one
/// database; a watcher resumes on the other sidecar with the `after_index`
/// it last received and misses nothing.
@Suite("PostgreSQL WatchLeases API", .serialized, .timeLimit(.minutes(3)))
struct PostgresWatchAPITests {
    /// One PostgreSQL-mode sidecar's lease API and event machinery.
    struct APISidecar {
        let events: PostgresEventTests.EventSidecar
        let store: PostgresLeaseStore
        let service: DistributedGCService

        init(client: PostgresClient) {
            events = PostgresEventTests.EventSidecar(client: client)
            var limits = LeaseLimits()
            limits.minDurationSeconds = 1
            store = PostgresLeaseStore(client: client, limits: limits, events: events.hub, logger: quietLogger)
            service = DistributedGCService(store: store, clock: SystemWallClock(), metrics: SidecarMetrics(), nodeID: "pg",
                                           logger: quietLogger)
        }

        /// Serves the API and runs the event machinery for `body`, which
        /// gets a client of this sidecar.
        func serving(_ body: (DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>) async throws -> Void) async throws {
            try await store.prepareForService()
            let server = GRPCServer(
                transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
                services: [service])
            try await events.running {
                try await ServerTests.serving(server) { address in
                    try await withGRPCClient(
                        transport: .http2NIOPosix(target: .ipv4(address: address.host, port: address.port), transportSecurity: .plaintext)
                    ) { client in
                        try await body(.init(wrapping: client))
                    }
                }
            }
        }
    }

    @Test("a watch broken on one sidecar resumes on another with after_index: every event once, in order")
    func resumeOnAnotherSidecar() async throws {
        try await withFreshDatabase { database, clientA in
            try await withPostgresClient(database) { clientB in
                let a = APISidecar(client: clientA)
                let b = APISidecar(client: clientB)
                try await a.serving { onA in
                    try await b.serving { onB in
                        let start = try await onA.createLease(createRequest(object: "start", duration: 600, httpEndpoint: nil))
                        var ids: [String] = []
                        for i in 0..<10 {
                            // Writes through both sidecars.
                            let via = i.isMultiple(of: 2) ? onA : onB
                            ids.append(try await via.createLease(createRequest(object: "o\(i)", duration: 600, httpEndpoint: nil)).leaseID)
                        }
                        for id in ids[0..<3] { _ = try await onB.renewLease(renewRequest(id, extend: 600)) }
                        for id in ids[3..<6] { _ = try await onA.releaseLease(releaseRequest(id)) }
                        let end = try await onB.createLease(createRequest(object: "end", duration: 600, httpEndpoint: nil))
                        let total = 1 + 10 + 3 + 3 + 1

                        // From the first event on, on A: the whole history, in position order.
                        let full = try await onA.watchEvents(afterIndex: 0, afterPosition: 0, stopAt: end.leaseID)
                        #expect(full.count == total)
                        #expect(full.map(\.index) == Array(1...UInt64(total)), "positions 1…n")
                        #expect(full.first?.leaseID == start.leaseID && full.first?.kind == .created)
                        #expect(full.filter { $0.kind == .renewed }.count == 3)
                        #expect(full.filter { $0.kind == .released }.map(\.leaseID) == Array(ids[3..<6]))

                        // The same history from B, and a break after 7 events resumed on B.
                        let onBFull = try await onB.watchEvents(afterIndex: 0, afterPosition: 0, stopAt: end.leaseID)
                        #expect(onBFull == full, "every sidecar serves one order")
                        let head = try await onA.watchEvents(afterIndex: 0, afterPosition: 0, count: 7)
                        let last = try #require(head.last)
                        let rest = try await onB.watchEvents(afterIndex: last.index, afterPosition: last.position, stopAt: end.leaseID)
                        #expect(head + rest == full, "exactly once, in order, across sidecars")
                        let restNoPosition = try await onB.watchEvents(afterIndex: last.index, stopAt: end.leaseID)
                        #expect(restNoPosition == rest, "after_index alone resumes the same way")
                    }
                }
            }
        }
    }
}
