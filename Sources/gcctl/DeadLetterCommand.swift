import ArgumentParser
import GCProto
import SwiftProtobuf

/// `gcctl dlq ...`: cleanups that exhausted their retries (dead letters).
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List and retry dead-lettered cleanups.",
        subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List leases whose cleanup was dead-lettered, with the last error.")

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only cleanups to this endpoint (exact URL or host:port).") var endpoint: String = ""
        @Option(help: "Only leases of this service.") var serviceID: String = ""
        @Option(help: "Stop after this many (0 = all).") var max: Int = 0

        func run() async throws {
            var request = DistributedGc_ListLeasesRequest()
            request.cleanupStates = [.cleanupDeadLettered]
            request.cleanupEndpoint = endpoint
            request.serviceID = serviceID
            request.limit = 500
            let options = connection.callOptions
            let limit = max
            let leases = try await NodeConnection.with(connection) { [request] client in
                try await listAll(client, request, options: options, limit: limit)
            }
            var list = DistributedGc_ListLeasesResponse()
            list.leases = leases
            try Printer(format: connection.output).print(list) {
                [["LEASE", "OBJECT", "SERVICE", "ENDPOINT", "ATTEMPTS", "LAST ERROR"]] + leases.map { lease in
                    let cleanup = lease.cleanupConfig
                    let target = cleanup.cleanupHTTPEndpoint.isEmpty ? cleanup.cleanupEndpoint : cleanup.cleanupHTTPEndpoint
                    return [lease.leaseID, "\(name(lease.objectType)) \(lease.objectID)", lease.serviceID, target,
                            "\(lease.cleanupAttempts)", String(lease.lastCleanupError.prefix(120))]
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue dead-lettered cleanups again with a fresh retry budget.",
            discussion: "Either name leases, or pass --all (optionally with --endpoint) to retry every dead letter, in rounds of up to 1,000.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Leases whose dead-lettered cleanup to retry.") var leaseIDs: [String] = []
        @Flag(help: "Retry every dead letter (of --endpoint, when given).") var all = false
        @Option(help: "With --all: only cleanups to this endpoint.") var endpoint: String = ""

        func validate() throws {
            if all && !leaseIDs.isEmpty { throw ValidationError("give lease ids or --all, not both") }
            if !all && leaseIDs.isEmpty { throw ValidationError("give at least one lease id, or --all") }
            if !all && !endpoint.isEmpty { throw ValidationError("--endpoint only applies with --all") }
        }

        func run() async throws {
            var request = DistributedGc_RetryDeadLettersRequest()
            request.leaseIds = leaseIDs
            request.all = all
            request.cleanupEndpoint = endpoint
            let options = connection.callOptions
            let retried = try await NodeConnection.with(connection) { [request] client in
                var retried: [String] = []
                while true {
                    let response = try await client.retryDeadLetters(request, options: options)
                    retried.append(contentsOf: response.leaseIds)
                    // --all goes round by round while dead letters remain and
                    // each round still retries something.
                    if !request.all || response.remaining == 0 || response.leaseIds.isEmpty { break }
                }
                return retried
            }
            var response = DistributedGc_RetryDeadLettersResponse()
            response.leaseIds = retried
            try Printer(format: connection.output).print(response) {
                [["LEASE", "RESULT"]] + retried.map { [$0, "queued again"] } + (retried.isEmpty ? [["-", "no dead letters matched"]] : [])
            }
        }
    }
}
