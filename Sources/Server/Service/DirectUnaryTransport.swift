import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

/// A server transport that answers a chosen set of unary methods straight
/// off the wrapped transport's streams and hands every other stream to the
/// `GRPCServer` that listens on it.
///
/// What it skips is GRPCCore's per-call machinery: the router, the RPC
/// executor, the interceptor chain and the type-erased request and response
/// sequences around each message, about 10 µs of server CPU per call here
/// (BENCHMARKS.md, "A direct path for unary calls"). A direct route does
/// the same steps without those layers and keeps the same contract: the
/// same authorization decision (``AuthorizationInterceptor``'s), the same
/// call metrics (``GRPCMetricsInterceptor``'s), GRPCCore's statuses and
/// messages for a malformed stream or message, and the same service code.
///
/// Deadlines: GRPCCore answers a passed deadline only by cancelling
/// ``ServerContext/cancellation``, which none of the routed handlers
/// reads, so a direct route starts no deadline timer either; the client
/// gives up on its own.
public struct DirectUnaryTransport<Inner: ServerTransport>: ServerTransport {
    public typealias Bytes = Inner.Bytes

    /// The transport that accepts connections and streams.
    public let inner: Inner
    /// Each route with its method's metric series, looked up once.
    let routes: [MethodDescriptor: (route: DirectUnaryRoute<Bytes>, series: GRPCServerMetrics.MethodSeries)]
    let authorization: AuthorizationInterceptor?

    /// Serves `routes` directly, counted in `metrics` and checked by
    /// `authorization` (nil when authorization is off) as the server's
    /// interceptors would, and hands every other method to the server.
    init(inner: Inner, routes: [MethodDescriptor: DirectUnaryRoute<Bytes>], metrics: SidecarMetrics, authorization: AuthorizationInterceptor?) {
        self.inner = inner
        self.routes = Dictionary(uniqueKeysWithValues: routes.map { method, route in
            (method, (route, metrics.grpc.series(for: method)))
        })
        self.authorization = authorization
    }

    public func configure(context: GRPCServerContext) {
        inner.configure(context: context)
    }

    public func beginGracefulShutdown() {
        inner.beginGracefulShutdown()
    }

    public func listen(
        streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async throws {
        let routes = self.routes
        try await inner.listen { stream, context in
            if let (route, series) = routes[stream.descriptor] {
                await serve(stream, context, route, series)
            } else {
                await streamHandler(stream, context)
            }
        }
    }

    /// One unary call: metadata, exactly one message, then the end of the
    /// request stream; answered with metadata, the response and an OK
    /// status, or with a non-OK status alone. The statuses and messages for
    /// a malformed stream are GRPCCore's.
    func serve(_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext, _ route: DirectUnaryRoute<Bytes>, _ series: GRPCServerMetrics.MethodSeries) async {
        var inbound = stream.inbound.makeAsyncIterator()
        let metadata: Metadata
        do {
            switch try await inbound.next() {
            case .metadata(let first)?:
                metadata = first
            case .message?:
                return await Self.end(stream, .internalError, """
                    Invalid inbound server stream; received message bytes at start of stream. \
                    This is likely to be a transport specific bug.
                    """)
            case nil:
                return await Self.end(stream, .internalError, "Empty inbound server stream.")
            }
        } catch {
            return await Self.end(stream, .unknown, "Inbound server stream threw error when reading metadata.")
        }
        let start = ContinuousClock.now
        let code: Int
        do {
            var context = context
            if let authorization {
                context = try authorization.authorize(metadata: metadata, context: context).get()
            }
            guard let request = try await Self.message(from: &inbound) else {
                throw RPCError(code: .internalError, message: "Empty stream.")
            }
            guard try await Self.message(from: &inbound) == nil else {
                throw RPCError(code: .internalError, message: "Too many messages.")
            }
            let response = try await route.serve(request, context)
            try await stream.outbound.write(.metadata([:]))
            try await stream.outbound.write(.message(response))
            code = 0
            try? await stream.outbound.write(.status(Status(code: .ok, message: ""), [:]))
        } catch {
            let error = Self.rpcError(error)
            code = error.code.rawValue
            try? await stream.outbound.write(.status(Status(code: Status.Code(error.code), message: error.message), error.metadata))
        }
        await stream.outbound.finish()
        series.finish(code: code, since: start)
    }

    /// The next request message, nil at the end of the stream; a second set
    /// of metadata is refused as GRPCCore refuses it.
    static func message(from inbound: inout Inbound.AsyncIterator) async throws -> Bytes? {
        switch try await inbound.next() {
        case .message(let bytes)?:
            return bytes
        case .metadata?:
            throw RPCError(code: .internalError, message: """
                Server received an extra set of metadata. Only one set of metadata may be received \
                at the start of the RPC. This is likely to be caused by a misbehaving client.
                """)
        case nil:
            return nil
        }
    }

    /// Ends a stream that is not a well-formed call with a status alone.
    static func end(_ stream: RPCStream<Inbound, Outbound>, _ code: Status.Code, _ message: String) async {
        try? await stream.outbound.write(.status(Status(code: code, message: message), [:]))
        await stream.outbound.finish()
    }

    /// The status a thrown error ends a call with, as GRPCCore would send it.
    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        if let error = error as? any RPCErrorConvertible { return RPCError(error) }
        return RPCError(code: .unknown, message: "Service method threw an unknown error.", cause: error)
    }
}

/// One unary method a ``DirectUnaryTransport`` serves itself: decodes the
/// request bytes, runs the handler, encodes the response.
struct DirectUnaryRoute<Bytes: GRPCContiguousBytes & Sendable>: Sendable {
    let serve: @Sendable (Bytes, ServerContext) async throws -> Bytes

    /// A route that decodes `Input` and encodes `Output` as protobuf, with
    /// GRPCProtobuf's coders (so a malformed request gets their status).
    init<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
        _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
    ) {
        serve = { bytes, context in
            let request = try ProtobufDeserializer<Input>().deserialize(bytes)
            let response = try await handler(request, context)
            return try ProtobufSerializer<Output>().serialize(response)
        }
    }
}
