import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

func keepAliveRequest(_ requestID: UInt64, _ leaseID: String, service: String = "svc-a",
                      extend: UInt64 = 0) -> DistributedGc_KeepAliveRequest {
    var request = DistributedGc_KeepAliveRequest()
    request.requestID = requestID
    request.leaseID = leaseID
    request.serviceID = service
    request.extendDurationSeconds = extend
    return request
}

extension DistributedGc_DistributedGCService.Client {
    /// Sends `requests` on one `KeepAlive` stream, closes its request side,
    /// and returns every answer by request id once the server has ended the
    /// stream (it answers everything first).
    func keepAlive(_ requests: [DistributedGc_KeepAliveRequest],
                   metadata: Metadata = [:]) async throws -> [UInt64: DistributedGc_KeepAliveResponse] {
        try await keepAlive(metadata: metadata) { writer in
            try await writer.write(contentsOf: requests)
        } onResponse: { response in
            var answers: [UInt64: DistributedGc_KeepAliveResponse] = [:]
            for try await answer in response.messages {
                answers[answer.requestID] = answer
            }
            return answers
        }
    }
}

extension DistributedGc_KeepAliveResponse {
    /// The error's status code, nil when the renewal succeeded.
    var errorCode: RPCError.Code? {
        guard case .error(let e) = result, let status = Status.Code(rawValue: Int(e.code)) else { return nil }
        return RPCError.Code(status)
    }

    var isRenewed: Bool {
        if case .renewed = result { return true }
        return false
    }
}
