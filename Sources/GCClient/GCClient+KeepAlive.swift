import GCProto
import GRPCCore
import Synchronization

/// How one `KeepAlive` stream ended (see ``GCClient/keepAliveStream(_:onAnswer:)``).
public enum KeepAliveStreamEnd: Sendable {
    /// The request side finished and the server answered everything.
    case closed
    /// The node does not offer `KeepAlive` (an older server): use the unary
    /// renew calls instead.
    case unimplemented
    /// The stream broke (node down, shutting down, connection lost,
    /// cancelled); unless cancelled, the client has moved on to the next
    /// node. Renewals not
    /// answered may or may not have been applied.
    case failed(any Error)
}

extension GCClient {
    /// Runs one `KeepAlive` stream against the node calls go to now: sends
    /// every request `requests` yields, hands each answer to `onAnswer` (in
    /// the order the server sends them, which need not be the requests'
    /// order), and returns when the stream ends.
    ///
    /// A failed stream moves the client on to the next node, as a failed
    /// call does; reconnecting (with backoff) is the caller's choice.
    /// ``LeaseKeeper`` does all of that; most code should use it.
    public func keepAliveStream(
        _ requests: AsyncStream<DistributedGc_KeepAliveRequest>,
        onAnswer: @escaping @Sendable (DistributedGc_KeepAliveResponse) async -> Void
    ) async -> KeepAliveStreamEnd {
        let index = preferred.withLock { $0 }
        var options = CallOptions.defaults
        // A node that is down fails the stream at once; the caller reconnects
        // elsewhere.
        options.waitForReady = false
        do {
            try await nodes[index].stub.keepAlive(options: options) { writer in
                for await request in requests {
                    try await writer.write(request)
                }
            } onResponse: { response in
                for try await answer in response.messages {
                    await onAnswer(answer)
                }
            }
            return .closed
        } catch let error as RPCError where error.code == .unimplemented {
            return .unimplemented
        } catch {
            // Cancelled by the caller: the node did nothing wrong.
            if !Task.isCancelled { moveOn(from: index) }
            return .failed(error)
        }
    }
}
