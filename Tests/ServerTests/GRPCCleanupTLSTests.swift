import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaseFSM
@testable import Server
import TestPKI
import Testing

/// gRPC cleanups over TLS (`grpcs://`, `GC_CLEANUP_TLS_CA_FILE`) against a
/// local TLS target with a certificate from a throwaway CA.
@Suite("gRPC cleanups over TLS")
struct GRPCCleanupTLSTests {
    static func request() throws -> CleanupRequest { try GRPCCleanupTransportTests.sampleRequest() }

    /// Serves `sink` over TLS on 127.0.0.1:0 with a certificate for localhost.
    func withTLSSink(_ pki: TestPKI, _ sink: CleanupHandlerSink, _ body: (Int) async throws -> Void) async throws {
        let cert = try pki.node("localhost")
        let server = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: "127.0.0.1", port: 0),
                transportSecurity: .tls(.defaults(
                    certificateChain: [.file(path: cert.certificateFile, format: .pem)],
                    privateKey: .file(path: cert.keyFile, format: .pem)))),
            services: [sink])
        try await serving(server) { address in try await body(address.port) }
    }

    @Test("grpcs:// and a configured CA reach a TLS target; plaintext and a foreign CA do not")
    func tlsTargets() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gc-cleanup-tls-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(directory: dir)
        let other = try TestPKI(directory: dir + "/other", name: "other")
        let sink = CleanupHandlerSink()
        try await withTLSSink(pki, sink) { port in
            let trusting = GRPCCleanupTransport(tlsCAFile: pki.caFile)
            defer { trusting.shutdown() }
            // The deadline is generous: what is tested is that the call
            // succeeds, and the first TLS handshake on a loaded 2-core CI
            // machine (the suite runs in parallel) once took over 5 s.
            let overTLS = await trusting.deliver(try Self.request(), to: .grpc("grpcs://localhost:\(port)"), timeout: .seconds(60))
            #expect(overTLS == .succeeded)
            let implicit = await trusting.deliver(try Self.request(), to: .grpc("localhost:\(port)"), timeout: .seconds(60))
            #expect(implicit == .succeeded, "with GC_CLEANUP_TLS_CA_FILE every target is called over TLS")
            #expect(sink.received.count == 2)

            let plaintext = GRPCCleanupTransport()
            defer { plaintext.shutdown() }
            let refused = await plaintext.deliver(try Self.request(), to: .grpc("localhost:\(port)"), timeout: .seconds(2))
            #expect(refused != .succeeded, "a plaintext call to a TLS target fails")

            let foreign = GRPCCleanupTransport(tlsCAFile: other.caFile)
            defer { foreign.shutdown() }
            let untrusted = await foreign.deliver(try Self.request(), to: .grpc("grpcs://localhost:\(port)"), timeout: .seconds(2))
            #expect(untrusted != .succeeded, "a certificate from another CA is not trusted")
            #expect(sink.received.count == 2)
        }
    }
}
