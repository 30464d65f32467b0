import NIOCore
import NIOHTTP1

/// One cleanup request for an ``HTTP1ExchangeHandler``: written to the
/// channel, answered through `answer`.
struct HTTP1Exchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    /// The whole exchange (request written, answer and body read) ends by
    /// then, or fails with ``HTTP1ExchangeTimeout``.
    var deadline: NIODeadline
    var answer: EventLoopPromise<CleanupAnswer>
}

/// The exchange's deadline passed (the connection is closed).
struct HTTP1ExchangeTimeout: Error {}

/// The connection ended before the answer did. `sawAnswer` is false when
/// not one byte of an answer arrived: on a reused keep-alive connection that
/// is the server having closed it while idle, and the request may be sent
/// again on a new connection (cleanups are idempotent).
struct HTTP1ConnectionLost: Error, CustomStringConvertible {
    var sawAnswer: Bool
    var underlying: (any Error)?

    var description: String {
        let base = sawAnswer ? "connection closed during the answer" : "connection closed before an answer"
        return underlying.map { "\(base): \($0)" } ?? base
    }
}

/// Runs one ``HTTP1Exchange`` at a time on an HTTP/1.1 connection (after
/// NIO's request encoder and response decoder) and completes its promise
/// with the answer, on the channel's event loop.
///
/// Each exchange gets exactly one completion: its answer, a timeout (the
/// connection is then closed), or ``HTTP1ConnectionLost`` when the
/// connection ends first. A body longer than ``maxBodyBytes`` ends the
/// exchange once that much was read; the connection is then closed rather
/// than drained. A second exchange written while one is running is refused
/// (the pool never does that).
final class HTTP1ExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTP1Exchange
    typealias OutboundOut = HTTPClientRequestPart

    /// Bytes of a body read before the exchange ends without the rest.
    let maxBodyBytes: Int
    private struct Running {
        var promise: EventLoopPromise<CleanupAnswer>
        var timer: Scheduled<Void>?
        var excerpt = CleanupAnswerExcerpt()
        var keepAlive = false
        var sawAnswer = false
    }

    private var running: Running?
    private var closed = false

    struct Busy: Error {}

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard running == nil, !closed else {
            let error: any Error = closed ? HTTP1ConnectionLost(sawAnswer: false, underlying: nil) : Busy()
            exchange.answer.fail(error)
            promise?.fail(error)
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let timer = loop.scheduleTask(deadline: exchange.deadline) {
            let (handler, context) = bound.value
            handler.end(.failure(HTTP1ExchangeTimeout()), context: context, close: true)
        }
        running = Running(promise: exchange.answer, timer: timer)
        let written = loop.makePromise(of: Void.self)
        written.futureResult.whenComplete { result in
            if case .failure(let error) = result {
                let (handler, context) = bound.value
                handler.end(.failure(HTTP1ConnectionLost(sawAnswer: handler.running?.sawAnswer ?? false, underlying: error)),
                            context: context, close: true)
            }
            promise?.completeWith(result)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard running != nil else {
            // An answer nobody asked for: the connection cannot be trusted.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            running?.sawAnswer = true
            running?.excerpt.head(head)
            running?.keepAlive = head.isKeepAlive
        case .body(let part):
            running?.sawAnswer = true
            if running?.excerpt.body(part, maxBodyBytes: maxBodyBytes) == true, let running {
                end(.success(running.excerpt.answer(reusable: false)), context: context, close: true)
            }
        case .end:
            guard let running else { return }
            let answer = running.excerpt.answer(reusable: running.keepAlive)
            end(.success(answer), context: context, close: !answer.reusable)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        end(.failure(HTTP1ConnectionLost(sawAnswer: running?.sawAnswer ?? false, underlying: nil)), context: context, close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(.failure(HTTP1ConnectionLost(sawAnswer: running?.sawAnswer ?? false, underlying: error)), context: context, close: true)
        if running == nil { context.close(promise: nil) }
    }

    /// Completes the running exchange, if any, once.
    private func end(_ result: Result<CleanupAnswer, any Error>, context: ChannelHandlerContext, close: Bool) {
        guard let finished = running else { return }
        running = nil
        finished.timer?.cancel()
        if close {
            closed = true
            context.close(promise: nil)
        }
        finished.promise.completeWith(result)
    }
}
