import LeaseFSM
import NIOCore
import NIOHTTP1
import NIOPosix
@testable import Server
import Synchronization
import Testing

/// What ``ScriptedHTTPServer`` does with one request.
enum ScriptedReply: Sendable {
    /// A complete answer; `close` adds `Connection: close` and closes after it.
    case answer(status: Int, close: Bool = false)
    /// Closes the connection without a byte of an answer (a keep-alive
    /// connection the server timed out just as the request arrived).
    case closeSilently
    /// A head promising 100 bytes, 10 of them, then the connection is closed.
    case cutMidBody
}

/// A raw HTTP/1.1 server on 127.0.0.1 whose replies follow a script indexed
/// by connection (0, 1, …) and request number on that connection (0, 1, …).
final class ScriptedHTTPServer: Sendable {
    struct Seen: Sendable, Equatable {
        var connection: Int
        var request: Int
    }

    private let script: @Sendable (Seen) -> ScriptedReply
    private let state = Mutex<(connections: Int, seen: [Seen])>((0, []))

    init(script: @escaping @Sendable (Seen) -> ScriptedReply) {
        self.script = script
    }

    /// Every request received, in order.
    var seen: [Seen] { state.withLock { $0.seen } }
    var connections: Int { state.withLock { $0.connections } }

    /// Runs the server for the duration of `body`, which gets its port.
    func run(_ body: (Int) async throws -> Void) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                let connection = self.state.withLock { s in
                    defer { s.connections += 1 }
                    return s.connections
                }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    try child.pipeline.syncOperations.addHandler(Handler(server: self, connection: connection))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        try await body(channel.localAddress?.port ?? 0)
    }

    fileprivate func reply(to seen: Seen) -> ScriptedReply {
        state.withLock { $0.seen.append(seen) }
        return script(seen)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: ScriptedHTTPServer
        let connection: Int
        var requests = 0

        init(server: ScriptedHTTPServer, connection: Int) {
            self.server = server
            self.connection = connection
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let reply = server.reply(to: Seen(connection: connection, request: requests))
            requests += 1
            switch reply {
            case .answer(let status, let close):
                var headers = HTTPHeaders([("Content-Length", "2")])
                if close { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if close {
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    done.whenComplete { _ in bound.value.close(promise: nil) }
                }
            case .closeSilently:
                context.close(promise: nil)
            case .cutMidBody:
                let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "100"])
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0123456789")))))
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }
}

@Suite("HTTP/1.1 cleanup connections")
struct HTTP1ConnectionPoolTests {
    static let timeout = Duration.seconds(10)

    static func deliver(_ transport: HTTPCleanupTransport, port: Int) async -> CleanupAttemptResult {
        guard let request = try? GRPCCleanupTransportTests.sampleRequest() else { return .failed(reason: "no sample request", permanent: true) }
        return await transport.deliver(request, to: .http("http://127.0.0.1:\(port)/cleanup"), timeout: timeout)
    }

    @Test("consecutive cleanups to one target share one keep-alive connection")
    func reusesConnection() async throws {
        let server = ScriptedHTTPServer { _ in .answer(status: 200) }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        let transport = HTTPCleanupTransport(pool: pool)
        try await server.run { port in
            for _ in 0..<5 { #expect(await Self.deliver(transport, port: port) == .succeeded) }
        }
        #expect(pool.connectionsOpened == 1)
        #expect(server.seen == (0..<5).map { .init(connection: 0, request: $0) })
        #expect(pool.idleCount == 1)
    }

    @Test("a kept connection the target closed while idle is replaced, and the cleanup sent once more on a new one")
    func staleConnectionRetried() async throws {
        // The first connection answers once, then closes on the next request
        // without answering, as a server whose keep-alive timer fired does.
        let server = ScriptedHTTPServer { seen in seen.connection == 0 && seen.request == 1 ? .closeSilently : .answer(status: 200) }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        let transport = HTTPCleanupTransport(pool: pool)
        try await server.run { port in
            #expect(await Self.deliver(transport, port: port) == .succeeded)
            #expect(await Self.deliver(transport, port: port) == .succeeded)
        }
        #expect(server.seen == [.init(connection: 0, request: 0), .init(connection: 0, request: 1), .init(connection: 1, request: 0)])
        #expect(pool.connectionsOpened == 2)
    }

    @Test("an answer cut off mid-body is a failed attempt, not sent again within the attempt")
    func cutAnswerFails() async throws {
        let server = ScriptedHTTPServer { _ in .cutMidBody }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        try await server.run { port in
            let result = await Self.deliver(HTTPCleanupTransport(pool: pool), port: port)
            guard case .failed(let reason, let permanent) = result else {
                Issue.record("a cut answer succeeded")
                return
            }
            #expect(!permanent)
            #expect(reason.contains("connection closed during the answer"), "\(reason)")
        }
        #expect(server.seen.count == 1)
        #expect(pool.idleCount == 0)
    }

    @Test("a fresh connection closed without an answer is a failed attempt (only reused connections are retried)")
    func freshConnectionClosedFails() async throws {
        let server = ScriptedHTTPServer { _ in .closeSilently }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        try await server.run { port in
            let result = await Self.deliver(HTTPCleanupTransport(pool: pool), port: port)
            guard case .failed(let reason, _) = result else {
                Issue.record("a request nobody answered succeeded")
                return
            }
            #expect(reason.contains("connection closed before an answer"), "\(reason)")
        }
        #expect(server.seen.count == 1)
    }

    @Test("an answer with Connection: close is not kept; the next cleanup opens a new connection")
    func connectionCloseNotKept() async throws {
        let server = ScriptedHTTPServer { _ in .answer(status: 200, close: true) }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        try await server.run { port in
            #expect(await Self.deliver(HTTPCleanupTransport(pool: pool), port: port) == .succeeded)
            #expect(pool.idleCount == 0)
            #expect(await Self.deliver(HTTPCleanupTransport(pool: pool), port: port) == .succeeded)
        }
        #expect(pool.connectionsOpened == 2)
        #expect(server.seen == [.init(connection: 0, request: 0), .init(connection: 1, request: 0)])
    }

    @Test("a failed answer (500) still leaves the connection usable")
    func failureKeepsConnection() async throws {
        let server = ScriptedHTTPServer { seen in .answer(status: seen.request == 0 ? 500 : 200) }
        let pool = HTTP1ConnectionPool(maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        let transport = HTTPCleanupTransport(pool: pool)
        try await server.run { port in
            guard case .failed(let reason, false) = await Self.deliver(transport, port: port) else {
                Issue.record("a 500 was not a failed attempt")
                return
            }
            #expect(reason.hasPrefix("HTTP 500 from http://127.0.0.1:\(port)/cleanup: ok"), "\(reason)")
            #expect(await Self.deliver(transport, port: port) == .succeeded)
        }
        #expect(pool.connectionsOpened == 1)
    }

    @Test("idle connections past the idle timeout are closed, not reused")
    func idleTimeoutCloses() async throws {
        let server = ScriptedHTTPServer { _ in .answer(status: 200) }
        let pool = HTTP1ConnectionPool(idleTimeout: .milliseconds(1), maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        let transport = HTTPCleanupTransport(pool: pool)
        try await server.run { port in
            #expect(await Self.deliver(transport, port: port) == .succeeded)
            // The timeout is 1 ms: wait until it has surely passed.
            try await Task.sleep(for: .milliseconds(20))
            #expect(await Self.deliver(transport, port: port) == .succeeded)
        }
        #expect(pool.connectionsOpened == 2)
        #expect(server.seen.map(\.connection) == [0, 1])
    }

    @Test("at most maxIdlePerKey connections stay open idle per address")
    func idleBound() async throws {
        let server = ScriptedHTTPServer { _ in .answer(status: 200) }
        let pool = HTTP1ConnectionPool(maxIdlePerKey: 2, maxBodyBytes: 1024)
        defer { pool.closeIdle() }
        let transport = HTTPCleanupTransport(pool: pool)
        try await server.run { port in
            await withTaskGroup(of: CleanupAttemptResult.self) { group in
                for _ in 0..<8 { group.addTask { await Self.deliver(transport, port: port) } }
                for await result in group { #expect(result == .succeeded) }
            }
        }
        #expect(pool.idleCount == min(2, pool.connectionsOpened), "opened \(pool.connectionsOpened)")
    }

    @Test("the request target percent-encodes what may not appear raw in an HTTP/1.1 request line, and keeps escapes")
    func requestTarget() throws {
        let url = try #require(CleanupURL("http://files:8080/caf\u{E9}/a|b?x=%20&y={1}\u{7F}"))
        #expect(url.requestTarget == "/caf%C3%A9/a%7Cb?x=%20&y=%7B1%7D%7F")
        let plain = try #require(CleanupURL("http://files:8080/cleanup?token=a-b_c.d~e:f@g/h"))
        #expect(plain.requestTarget == plain.pathAndQuery)
    }
}
