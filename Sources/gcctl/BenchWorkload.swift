import ArgumentParser
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2

/// The generated client `gcctl bench` drives.
typealias BenchClient = DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>

/// What `gcctl bench` hammers.
enum BenchWorkload: String, ExpressibleByArgument, CaseIterable, Sendable {
    case create
    case renew
    case batchRenew = "batch-renew"
    case get
    /// 20% create, 60% renew, 20% get.
    case mixed

    /// Whether the run first creates a pool of leases to renew or read.
    var needsPool: Bool { self != .create }

    /// The operation a worker issues next.
    func nextOperation(using random: inout some RandomNumberGenerator) -> BenchOperation {
        switch self {
        case .create: return .create
        case .renew: return .renew
        case .batchRenew: return .batchRenew
        case .get: return .get
        case .mixed:
            let roll = Int.random(in: 0..<100, using: &random)
            return roll < 20 ? .create : roll < 80 ? .renew : .get
        }
    }
}

/// One kind of RPC a worker issues; latencies are kept per kind.
enum BenchOperation: String, CaseIterable, Sendable, Comparable {
    case create
    case renew
    case batchRenew = "batch-renew"
    case get

    static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// What became of one operation.
enum OperationOutcome: Sendable {
    /// The RPC succeeded. `items` leases were renewed or read or created;
    /// `itemErrors` holds the error code of each lease of a batch renewal
    /// that failed on its own.
    case succeeded(items: Int, itemErrors: [String])
    /// The RPC failed with this gRPC status code name (e.g. "UNAVAILABLE").
    case failed(code: String, message: String)
}

/// Builds and sends the requests of one run.
///
/// Immutable, so every worker shares one.
struct BenchRequests: Sendable {
    let serviceID: String
    let leaseDurationSeconds: UInt64
    let batchSize: Int
    /// Read with `STALE` consistency instead of `LINEARIZABLE`.
    let staleReads: Bool
    /// Random per run, so the object ids of a run are recognisable and
    /// never collide with an earlier run's (`bench-<tag>-...`).
    let runTag: String
    let options: CallOptions

    /// The object id of a bench lease: `bench-<run tag>-<name>`.
    func objectID(_ name: String) -> String { "bench-\(runTag)-\(name)" }

    /// Creates a lease on a `DATABASE_ROW` object without a cleanup endpoint;
    /// returns its id.
    func createLease(objectID: String, on client: BenchClient) async throws -> String {
        var request = DistributedGc_CreateLeaseRequest()
        request.objectID = objectID
        request.objectType = .databaseRow
        request.serviceID = serviceID
        request.leaseDurationSeconds = leaseDurationSeconds
        let response = try await client.createLease(request, options: options)
        guard response.success else {
            throw RPCError(code: .unknown, message: "CreateLease answered success = false: \(response.errorMessage)")
        }
        return response.leaseID
    }

    /// Sends one `operation`. `name` makes the object id of a create unique;
    /// renewals and reads pick their leases from `pool`.
    func perform(
        _ operation: BenchOperation, name: String, pool: [String], on client: BenchClient,
        using random: inout some RandomNumberGenerator
    ) async -> OperationOutcome {
        switch operation {
        case .create:
            return await outcome { _ = try await createLease(objectID: objectID(name), on: client) }
        case .renew:
            var request = DistributedGc_RenewLeaseRequest()
            request.leaseID = pick(from: pool, using: &random)
            request.serviceID = serviceID
            return await outcome {
                let response = try await client.renewLease(request, options: options)
                if !response.success { throw unsuccessful("RenewLease", response.errorMessage) }
            }
        case .batchRenew:
            var request = DistributedGc_RenewLeasesRequest()
            request.leaseIds = batch(from: pool, using: &random)
            request.serviceID = serviceID
            do {
                let response = try await client.renewLeases(request, options: options)
                let failures = response.results.filter { !$0.success }
                if let first = failures.first, failures.count == response.results.count {
                    return .failed(code: first.errorCode, message: "every renewal of the batch failed: \(first.errorMessage)")
                }
                return .succeeded(items: response.results.count - failures.count, itemErrors: failures.map(\.errorCode))
            } catch {
                return Self.failure(error)
            }
        case .get:
            var request = DistributedGc_GetLeaseRequest()
            request.leaseID = pick(from: pool, using: &random)
            request.consistency = staleReads ? .stale : .linearizable
            return await outcome {
                let response = try await client.getLease(request, options: options)
                if !response.found {
                    throw RPCError(code: .notFound, message: "GetLease answered found = false for \(request.leaseID)")
                }
            }
        }
    }

    private func pick(from pool: [String], using random: inout some RandomNumberGenerator) -> String {
        pool.isEmpty ? "" : pool[Int.random(in: 0..<pool.count, using: &random)]
    }

    /// `batchSize` consecutive pool leases (wrapping) from a random start;
    /// never the same lease twice in one batch.
    private func batch(from pool: [String], using random: inout some RandomNumberGenerator) -> [String] {
        guard !pool.isEmpty else { return [] }
        let start = Int.random(in: 0..<pool.count, using: &random)
        return (0..<min(batchSize, pool.count)).map { pool[(start + $0) % pool.count] }
    }

    private func outcome(_ call: () async throws -> Void) async -> OperationOutcome {
        do {
            try await call()
            return .succeeded(items: 1, itemErrors: [])
        } catch {
            return Self.failure(error)
        }
    }

    private func unsuccessful(_ method: String, _ message: String) -> RPCError {
        RPCError(code: .unknown, message: "\(method) answered success = false: \(message)")
    }

    /// The outcome of an RPC that threw `error`.
    static func failure(_ error: any Error) -> OperationOutcome {
        if let error = error as? RPCError {
            return .failed(code: error.code.statusName, message: error.message)
        }
        if error is CancellationError { return .failed(code: "CANCELLED", message: "cancelled") }
        return .failed(code: "CLIENT_ERROR", message: "\(error)")
    }
}
