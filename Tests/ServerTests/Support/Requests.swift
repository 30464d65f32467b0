import GCProto

/// A create request with sensible defaults for tests.
func createRequest(
    object: String = "obj-1", type: DistributedGc_ObjectType = .databaseRow, service: String = "svc-a",
    duration: UInt64 = 60, metadata: [String: String] = [:], httpEndpoint: String? = "http://127.0.0.1:1/cleanup",
    maxRetries: UInt32 = 0, retryDelay: UInt64 = 0, payload: String = ""
) -> DistributedGc_CreateLeaseRequest {
    var request = DistributedGc_CreateLeaseRequest()
    request.objectID = object
    request.objectType = type
    request.serviceID = service
    request.leaseDurationSeconds = duration
    request.metadata = metadata
    if let httpEndpoint {
        var cleanup = DistributedGc_CleanupConfig()
        cleanup.cleanupHTTPEndpoint = httpEndpoint
        cleanup.maxRetries = maxRetries
        cleanup.retryDelaySeconds = retryDelay
        cleanup.cleanupPayload = payload
        request.cleanupConfig = cleanup
    }
    return request
}

func renewRequest(_ id: String, service: String = "svc-a", extend: UInt64 = 0) -> DistributedGc_RenewLeaseRequest {
    var request = DistributedGc_RenewLeaseRequest()
    request.leaseID = id
    request.serviceID = service
    request.extendDurationSeconds = extend
    return request
}

func releaseRequest(_ id: String, service: String = "svc-a") -> DistributedGc_ReleaseLeaseRequest {
    var request = DistributedGc_ReleaseLeaseRequest()
    request.leaseID = id
    request.serviceID = service
    return request
}

func getRequest(_ id: String) -> DistributedGc_GetLeaseRequest {
    var request = DistributedGc_GetLeaseRequest()
    request.leaseID = id
    return request
}

extension DistributedGc_DistributedGCService.Client {
    /// Every lease matching `request`, following pages of `request.limit`.
    func listAll(_ request: DistributedGc_ListLeasesRequest) async throws -> (leases: [DistributedGc_LeaseInfo], pages: Int) {
        var page = request
        var all: [DistributedGc_LeaseInfo] = []
        var pages = 0
        while true {
            let response = try await listLeases(page)
            pages += 1
            all += response.leases
            if response.nextPageToken.isEmpty { return (all, pages) }
            page.pageToken = response.nextPageToken
            if pages > 10_000 { throw TestFailure("paging does not terminate") }
        }
    }
}
