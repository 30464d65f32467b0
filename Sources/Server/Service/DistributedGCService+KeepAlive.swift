import GCProto
import GRPCCore
import LeaseFSM

/// `KeepAlive`: renewals in, one answer per renewal out, on one stream.
extension DistributedGCService {
    /// Most renewals one stream has read and not yet answered; past this the
    /// server stops reading the stream until answers are written.
    public static let keepAliveWindow = 1_024

    public func keepAlive(
        request: RPCAsyncSequence<DistributedGc_KeepAliveRequest, any Error>,
        response: RPCWriter<DistributedGc_KeepAliveResponse>,
        context: ServerContext
    ) async throws {
        let caller = try authorizedCaller(context)
        let window = KeepAliveWindow<DistributedGc_KeepAliveResponse>(limit: Self.keepAliveWindow)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            // Reads and submits; returns when the client has sent everything.
            group.addTask {
                for try await renewal in request {
                    try await window.admit()
                    submit(renewal, caller: caller, to: window)
                }
                window.endInput()
                return false
            }
            // Writes answers as they come, many per write; returns once every
            // renewal read is answered and the input has ended.
            group.addTask {
                while let answers = await window.next() {
                    try await response.write(contentsOf: answers)
                    window.written(answers.count)
                }
                return true
            }
            // gRPC reports a client's cancellation through the context.
            group.addTask {
                try await context.cancellation.cancelled
                return true
            }
            while let done = try await group.next() {
                if done { break }
            }
            window.cancel()
            group.cancelAll()
        }
    }

    /// Checks one renewal and hands it to the batcher; every refusal is an
    /// error answer on the stream, which goes on.
    private func submit(_ request: DistributedGc_KeepAliveRequest, caller: Caller?,
                        to window: KeepAliveWindow<DistributedGc_KeepAliveResponse>) {
        let (requestID, leaseID) = (request.requestID, request.leaseID)
        let renewal = LeaseCommand.Renewal(
            leaseID: LeaseID(request.leaseID), serviceID: request.serviceID, extendSeconds: request.extendDurationSeconds)
        if let error = store.limits.validate(renewal) {
            window.push(Self.keepAliveAnswer(requestID, leaseID, .failure(error)))
            return
        }
        if let caller, !caller.mayWrite(renewal.serviceID) {
            window.push(Self.keepAliveAnswer(requestID, leaseID, .failure(deny(.leasesWrite, caller, "service '\(renewal.serviceID)'"))))
            return
        }
        let metrics = self.metrics
        let accepted = renewals.submit(renewal) { outcome in
            switch outcome {
            case .success: metrics.recordKeepAliveRenewal()
            case .failure(let error): if error is StoreError { metrics.recordProposeFailure() }
            }
            window.push(Self.keepAliveAnswer(requestID, leaseID, outcome))
        }
        if !accepted {
            window.push(Self.keepAliveAnswer(requestID, leaseID, .failure(RPCError(
                code: .resourceExhausted,
                message: "this node has \(renewals.maxQueued) renewals waiting to commit; retry after a backoff, or renew less often"))))
        }
    }

    static func keepAliveAnswer(_ requestID: UInt64, _ leaseID: String,
                                _ outcome: RenewalBatcher.Outcome) -> DistributedGc_KeepAliveResponse {
        var answer = DistributedGc_KeepAliveResponse()
        answer.requestID = requestID
        answer.leaseID = leaseID
        switch outcome {
        case .success(let renewed):
            var r = DistributedGc_KeepAliveRenewed()
            r.newExpiresAt = .init(renewed.expiresAt)
            r.fencingToken = renewed.fencingToken
            answer.renewed = r
        case .failure(let failure):
            let error: RPCError
            if let convertible = failure as? any RPCErrorConvertible {
                error = RPCError(convertible)
            } else {
                error = RPCError(code: .unavailable, message: "the renewal could not be decided (\(failure)); retry")
            }
            var e = DistributedGc_KeepAliveError()
            e.code = UInt32(error.code.rawValue)
            e.message = error.message
            answer.error = e
        }
        return answer
    }
}
