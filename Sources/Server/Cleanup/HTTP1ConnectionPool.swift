import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Keep-alive HTTP/1.1 connections to `http://` cleanup targets, by checked
/// address and port: each carries one request at a time
/// (``HTTP1ExchangeHandler``), and goes back to the pool when its answer
/// leaves it reusable.
///
/// There is no limit on connections in use: the dispatcher already bounds
/// requests per endpoint (`GC_CLEANUP_ENDPOINT_CONCURRENCY`), so a request
/// never waits for a connection, it opens one. At most ``maxIdlePerKey``
/// stay open idle per address, for at most ``idleTimeout`` each.
///
/// A request on a reused connection that the target closed while it was
/// idle (no byte of an answer came back) is sent once more on a new
/// connection; cleanups carry an idempotency key, so a repeat is safe.
final class HTTP1ConnectionPool: Sendable {
    struct Key: Hashable, Sendable {
        var address: IPAddress
        var port: Int
    }

    private struct Idle {
        var channel: any Channel
        var since: NIODeadline
    }

    let group: any EventLoopGroup
    let maxIdlePerKey: Int
    let idleTimeout: TimeAmount
    let maxBodyBytes: Int
    private struct IdleConnections {
        var byKey: [Key: [Idle]] = [:]
        /// When idle connections to every address were last checked for
        /// expiry (those to an address never used again are found here).
        var lastSweep = NIODeadline.now()
    }

    private let idle = Mutex(IdleConnections())
    /// Connections opened, for tests and metrics.
    private let opened = Atomic<Int>(0)

    init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, maxIdlePerKey: Int = 256,
         idleTimeout: TimeAmount = .seconds(60), maxBodyBytes: Int) {
        self.group = group
        self.maxIdlePerKey = maxIdlePerKey
        self.idleTimeout = idleTimeout
        self.maxBodyBytes = maxBodyBytes
    }

    /// Connections opened since the pool was made.
    var connectionsOpened: Int { opened.load(ordering: .relaxed) }

    /// Idle connections held now, over all addresses.
    var idleCount: Int { idle.withLock { $0.byKey.values.reduce(0) { $0 + $1.count } } }

    /// Sends `head` and `body` to `key` and reads the answer, all by
    /// `deadline`. Throws ``HTTP1ExchangeTimeout`` once it passes, or the
    /// connection's error (connect refused, connection lost).
    func exchange(with key: Key, head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline) async throws -> CleanupAnswer {
        if let reused = checkOut(key) {
            do {
                return try await send(on: reused, key: key, head: head, body: body, deadline: deadline)
            } catch let lost as HTTP1ConnectionLost where !lost.sawAnswer {
                // Closed by the target while idle: try a fresh connection
                // (unless the close was this task's cancellation).
                try Task.checkCancellation()
            }
        }
        let channel = try await connect(to: key, deadline: deadline)
        return try await send(on: channel, key: key, head: head, body: body, deadline: deadline)
    }

    /// Closes every idle connection.
    func closeIdle() {
        let all = idle.withLock { state in
            defer { state.byKey.removeAll() }
            return state.byKey.values.flatMap { $0 }
        }
        for entry in all { entry.channel.close(promise: nil) }
    }

    private func send(on channel: any Channel, key: Key, head: HTTPRequestHead, body: ByteBuffer,
                      deadline: NIODeadline) async throws -> CleanupAnswer {
        let promise = channel.eventLoop.makePromise(of: CleanupAnswer.self)
        let exchange = HTTP1Exchange(head: head, body: body, deadline: deadline, answer: promise)
        // A channel closed meanwhile never hands the write to the handler:
        // the failed write completes the exchange instead.
        channel.writeAndFlush(exchange).whenFailure { error in
            promise.fail(HTTP1ConnectionLost(sawAnswer: false, underlying: error))
        }
        let answer = try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        if answer.reusable {
            checkIn(channel, key: key)
        } else {
            channel.close(promise: nil)
        }
        return answer
    }

    private func connect(to key: Key, deadline: NIODeadline) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw HTTP1ExchangeTimeout() }
        let address = try SocketAddress(ipAddress: key.address.description, port: key.port)
        let maxBodyBytes = self.maxBodyBytes
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTP1ExchangeHandler(maxBodyBytes: maxBodyBytes))
                }
            }
        do {
            let channel = try await bootstrap.connect(to: address).get()
            opened.add(1, ordering: .relaxed)
            return channel
        } catch ChannelError.connectTimeout {
            throw HTTP1ExchangeTimeout()
        }
    }

    /// The most recently used idle connection to `key` that is still open;
    /// connections idle past ``idleTimeout`` are closed on the way.
    private func checkOut(_ key: Key) -> (any Channel)? {
        let now = NIODeadline.now()
        var expired: [any Channel] = []
        let found: (any Channel)? = idle.withLock { state in
            guard state.byKey[key] != nil else { return nil }
            // In place (a copy of the stack would be made on every request).
            let found = Self.takeLive(from: &state.byKey[key]!, now: now, idleTimeout: idleTimeout, expired: &expired)
            if state.byKey[key]!.isEmpty { state.byKey[key] = nil }
            return found
        }
        for channel in expired { channel.close(promise: nil) }
        return found
    }

    /// Pops the most recent open connection of `stack`, after moving those
    /// idle past `idleTimeout` (at the bottom) to `expired`.
    private static func takeLive(from stack: inout [Idle], now: NIODeadline, idleTimeout: TimeAmount,
                                 expired: inout [any Channel]) -> (any Channel)? {
        let stale = stack.prefix { now - $0.since > idleTimeout }.count
        if stale > 0 {
            expired += stack[..<stale].map(\.channel)
            stack.removeFirst(stale)
        }
        while let top = stack.popLast() {
            if top.channel.isActive { return top.channel }
        }
        return nil
    }

    private func checkIn(_ channel: any Channel, key: Key) {
        let now = NIODeadline.now()
        var closing: [any Channel] = []
        idle.withLock { state in
            if now - state.lastSweep > idleTimeout {
                state.lastSweep = now
                for (other, stack) in state.byKey {
                    let live = stack.filter { now - $0.since <= idleTimeout }
                    guard live.count < stack.count else { continue }
                    closing += stack.filter { now - $0.since > idleTimeout }.map(\.channel)
                    state.byKey[other] = live.isEmpty ? nil : live
                }
            }
            guard state.byKey[key, default: []].count < maxIdlePerKey else {
                closing.append(channel)
                return
            }
            state.byKey[key, default: []].append(Idle(channel: channel, since: now))
        }
        for channel in closing { channel.close(promise: nil) }
    }
}
