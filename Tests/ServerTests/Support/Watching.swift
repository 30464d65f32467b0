import GCProto
import GRPCCore

extension DistributedGc_DistributedGCService.Client {
    /// The events of a watch resumed after (`afterIndex`, `afterPosition`),
    /// until `count` events arrived or the event of lease `stopAt` did.
    ///
    /// Callers make sure the stream reaches one of those (e.g. by creating a
    /// sentinel lease last); the call's deadline bounds it otherwise.
    func watchEvents(
        afterIndex: UInt64, afterPosition: UInt32? = nil, count: Int = .max, stopAt: String? = nil
    ) async throws -> [DistributedGc_LeaseEvent] {
        var request = DistributedGc_WatchLeasesRequest()
        request.afterIndex = afterIndex
        if let afterPosition { request.afterPosition = afterPosition }
        var options = CallOptions.defaults
        options.timeout = .seconds(60)
        return try await watchLeases(request, options: options) { response in
            var events: [DistributedGc_LeaseEvent] = []
            for try await event in response.messages {
                events.append(event)
                if events.count >= count || event.leaseID == stopAt { break }
            }
            return events
        }
    }
}
