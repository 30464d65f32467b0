import ArgumentParser
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `gcctl lease ...`: create, inspect, renew and release leases.
struct LeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease",
        abstract: "Create, inspect, renew and release leases.",
        subcommands: [Create.self, Get.self, List.self, Renew.self, Release.self, ForceRelease.self, LeaseWatchCommand.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a lease on an object.")

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Identifier of the leased object.") var objectID: String
        @Option(help: "Object type: \(ObjectTypeArgument.allValueStrings.joined(separator: ", ")).")
        var objectType: ObjectTypeArgument = .custom
        @Option(help: "Service that holds the lease.") var serviceID: String
        @Option(help: "Lease duration in seconds (0 = server default).") var duration: UInt64 = 0
        @Option(help: "Metadata entry key=value (repeatable).") var metadata: [String] = []
        @Option(help: "HTTP(S) URL to POST the cleanup request to.") var cleanupHTTP: String?
        @Option(help: "gRPC cleanup target host:port.") var cleanupGRPC: String?
        @Option(help: "Opaque payload passed to the cleanup endpoint.") var cleanupPayload: String?
        @Option(help: "Cleanup retries (0 = server default).") var maxRetries: UInt32 = 0
        @Option(help: "First retry delay in seconds (0 = server default).") var retryDelay: UInt64 = 0

        func run() async throws {
            var request = DistributedGc_CreateLeaseRequest()
            request.objectID = objectID
            request.objectType = objectType.wire
            request.serviceID = serviceID
            request.origin = WriteOrigin.once
            request.leaseDurationSeconds = duration
            request.metadata = try parseMetadata(metadata)
            if cleanupHTTP != nil || cleanupGRPC != nil || cleanupPayload != nil || maxRetries != 0 || retryDelay != 0 {
                var cleanup = DistributedGc_CleanupConfig()
                cleanup.cleanupHTTPEndpoint = cleanupHTTP ?? ""
                cleanup.cleanupEndpoint = cleanupGRPC ?? ""
                cleanup.cleanupPayload = cleanupPayload ?? ""
                cleanup.maxRetries = maxRetries
                cleanup.retryDelaySeconds = retryDelay
                request.cleanupConfig = cleanup
            }
            let options = connection.callOptions
            let response = try await NodeConnection.with(connection) { [request] client in try await client.createLease(request, options: options) }
            try Printer(format: connection.output).print(response) {
                [["LEASE", "EXPIRES", "FENCING", "INCARNATION"],
                 [response.leaseID, format(response.expiresAt), "\(response.fencingToken)", "\(response.incarnation)"]]
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one lease.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Lease id.") var leaseID: String
        @Flag(help: "Allow a possibly stale read from this node instead of a linearizable one.") var stale = false

        func run() async throws {
            var request = DistributedGc_GetLeaseRequest()
            request.leaseID = leaseID
            request.consistency = stale ? .stale : .linearizable
            let options = connection.callOptions
            let response = try await NodeConnection.with(connection) { [request] client in try await client.getLease(request, options: options) }
            guard response.found else { throw CommandFailure("lease \(leaseID) not found") }
            try Printer(format: connection.output).print(response.lease) { leaseDetail(response.lease) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List leases, following pages.")

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only leases of this service.") var serviceID: String = ""
        @Option(help: "Only leases on this object id.") var objectID: String = ""
        @Option(help: "Only this object type.") var objectType: ObjectTypeArgument?
        @Option(help: "Only these states (repeatable): active, expired, released.") var state: [LeaseStateArgument] = []
        @Option(help: "Stop after this many leases (0 = all).") var max: Int = 0
        @Flag(help: "Follow every page (the default without --max); progress on stderr.") var all = false
        @Flag(help: "Allow a possibly stale read from this node.") var stale = false

        func validate() throws {
            if all && max != 0 { throw ValidationError("give --all or --max, not both") }
            if max < 0 { throw ValidationError("--max must be 0 (all) or more") }
        }

        func run() async throws {
            var request = DistributedGc_ListLeasesRequest()
            request.serviceID = serviceID
            request.objectID = objectID
            request.objectType = objectType?.wire ?? .unknown
            request.states = state.map(\.wire)
            request.consistency = stale ? .stale : .linearizable
            request.limit = 500
            let options = connection.callOptions
            let limit = max
            let progress = connection.progressReporter
            let leases = try await NodeConnection.with(connection) { [request] client in
                try await listAll(client, request, options: options, limit: limit, progress: progress)
            }
            progress.finish()
            var list = DistributedGc_ListLeasesResponse()
            list.leases = leases
            try Printer(format: connection.output).print(list) {
                [["LEASE", "OBJECT", "TYPE", "SERVICE", "STATE", "EXPIRES", "CLEANUP"]] + leases.map { lease in
                    [lease.leaseID, lease.objectID, name(lease.objectType), lease.serviceID, name(lease.state),
                     format(lease.expiresAt), name(lease.cleanupState)]
                }
            }
        }
    }

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Renew one or more leases.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Lease ids.") var leaseIDs: [String]
        @Option(help: "Service that holds the leases.") var serviceID: String
        @Option(help: "New duration in seconds from now (0 = each lease's own).") var extend: UInt64 = 0

        func run() async throws {
            guard !leaseIDs.isEmpty else { throw ValidationError("give at least one lease id") }
            var request = DistributedGc_RenewLeasesRequest()
            request.leaseIds = leaseIDs
            request.serviceID = serviceID
            request.origin = WriteOrigin.once
            request.extendDurationSeconds = extend
            let options = connection.callOptions
            let response = try await NodeConnection.with(connection) { [request] client in try await client.renewLeases(request, options: options) }
            try Printer(format: connection.output).print(response) {
                [["LEASE", "RESULT", "EXPIRES", "FENCING"]] + response.results.map { result in
                    [result.leaseID, result.success ? "renewed" : "\(result.errorCode): \(result.errorMessage)",
                     result.success ? format(result.newExpiresAt) : "-", result.success ? "\(result.fencingToken)" : "-"]
                }
            }
            if response.results.contains(where: { !$0.success }) { throw ExitCode(1) }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a lease.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Lease id.") var leaseID: String
        @Option(help: "Service that holds the lease.") var serviceID: String

        func run() async throws {
            var request = DistributedGc_ReleaseLeaseRequest()
            request.leaseID = leaseID
            request.serviceID = serviceID
            request.origin = WriteOrigin.once
            let options = connection.callOptions
            let response = try await NodeConnection.with(connection) { [request] client in try await client.releaseLease(request, options: options) }
            try Printer(format: connection.output).print(response) { [["LEASE", "RESULT"], [leaseID, "released"]] }
        }
    }

    struct ForceRelease: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "force-release",
            abstract: "End a lease whoever holds it (admin; recorded in the event stream with the reason).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Lease id.") var leaseID: String
        @Option(help: "Why (kept in the RELEASED event).") var reason: String

        func run() async throws {
            var request = DistributedGc_ForceReleaseLeaseRequest()
            request.leaseID = leaseID
            request.reason = reason
            let options = connection.callOptions
            let response = try await NodeConnection.with(connection) { [request] client in try await client.forceReleaseLease(request, options: options) }
            try Printer(format: connection.output).print(response.lease) { leaseDetail(response.lease) }
        }
    }
}

/// Every lease `request` matches, following pages, at most `limit` (0 = all),
/// reporting each page to `progress`.
func listAll(
    _ client: DistributedGc_DistributedGCService.Client<HTTP2ClientTransport.Posix>,
    _ request: DistributedGc_ListLeasesRequest, options: CallOptions, limit: Int, progress: ProgressReporter
) async throws -> [DistributedGc_LeaseInfo] {
    var all: [DistributedGc_LeaseInfo] = []
    var page = request
    var pages = 0
    while true {
        let response = try await client.listLeases(page, options: options)
        all.append(contentsOf: response.leases)
        pages += 1
        progress.update("listing: \(all.count) leases in \(pages) page\(pages == 1 ? "" : "s")\(response.nextPageToken.isEmpty ? ", done" : ", more to fetch")")
        if response.nextPageToken.isEmpty || (limit > 0 && all.count >= limit) { break }
        page.pageToken = response.nextPageToken
    }
    return limit > 0 ? Array(all.prefix(limit)) : all
}

func parseMetadata(_ pairs: [String]) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("--metadata must be key=value, got '\(pair)'")
        }
        result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return result
}

func leaseDetail(_ lease: DistributedGc_LeaseInfo) -> [[String]] {
    var rows: [[String]] = [
        ["lease", lease.leaseID], ["object", "\(name(lease.objectType)) \(lease.objectID)"],
        ["service", lease.serviceID], ["state", name(lease.state)],
        ["created", format(lease.createdAt)], ["expires", format(lease.expiresAt)],
        ["last renewed", format(lease.lastRenewedAt)], ["renewals", "\(lease.renewalCount)"],
        ["duration", "\(lease.leaseDurationSeconds)s"], ["fencing token", "\(lease.fencingToken)"],
        ["incarnation", "\(lease.incarnation)"], ["cleanup", name(lease.cleanupState)],
    ]
    if lease.hasEndedAt { rows.append(["ended", format(lease.endedAt)]) }
    if lease.cleanupAttempts > 0 { rows.append(["cleanup attempts", "\(lease.cleanupAttempts)"]) }
    if !lease.lastCleanupError.isEmpty { rows.append(["last cleanup error", lease.lastCleanupError]) }
    if lease.hasCleanupConfig {
        let cleanup = lease.cleanupConfig
        let target = cleanup.cleanupHTTPEndpoint.isEmpty ? cleanup.cleanupEndpoint : cleanup.cleanupHTTPEndpoint
        rows.append(["cleanup target", target.isEmpty ? "-" : target])
    }
    for key in lease.metadata.keys.sorted() { rows.append(["metadata \(key)", lease.metadata[key] ?? ""]) }
    return rows
}

/// The origin of a command's one write (`RequestOrigin`): when an endpoint
/// answers UNAVAILABLE after all (a forwarded write whose answer was lost)
/// and the write goes to the next endpoint, the cluster applies it once.
enum WriteOrigin {
    static let once: DistributedGc_RequestOrigin = {
        var origin = DistributedGc_RequestOrigin()
        origin.clientID = "gcctl/" + String(UInt64.random(in: .min ... .max), radix: 16) + String(UInt64.random(in: .min ... .max), radix: 16)
        origin.sequence = 1
        origin.firstUnacknowledged = 1
        return origin
    }()
}
