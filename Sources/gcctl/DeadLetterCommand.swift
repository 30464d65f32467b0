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
        @Option(help: "Only cleanups to this target (the lease's cleanup URL or host:port, exact match).") var target: String = ""
        @Option(help: "Only leases of this service.") var serviceID: String = ""
        @Option(help: "Stop after this many (0 = all).") var max: Int = 0

        func run() async throws {
            var request = DistributedGc_ListLeasesRequest()
            request.cleanupStates = [.cleanupDeadLettered]
            request.cleanupEndpoint = target
            request.serviceID = serviceID
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
                [["LEASE", "OBJECT", "SERVICE", "TARGET", "ATTEMPTS", "LAST ERROR"]] + leases.map { lease in
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
            discussion: "Either name leases, or pass --all (optionally with --target) to retry every dead letter, in rounds of up to 1,000 (progress on stderr).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Leases whose dead-lettered cleanup to retry.") var leaseIDs: [String] = []
        @Flag(help: "Retry every dead letter (of --target, when given).") var all = false
        @Option(help: "With --all: only cleanups to this target (cleanup URL or host:port, exact match).") var target: String = ""

        func validate() throws {
            if all && !leaseIDs.isEmpty { throw ValidationError("give lease ids or --all, not both") }
            if !all && leaseIDs.isEmpty { throw ValidationError("give at least one lease id, or --all") }
            if !all && !target.isEmpty { throw ValidationError("--target only applies with --all") }
        }

        func run() async throws {
            var request = DistributedGc_RetryDeadLettersRequest()
            request.leaseIds = leaseIDs
            request.all = all
            request.cleanupEndpoint = target
            let options = connection.callOptions
            let progress = connection.progressReporter
            let retried = try await NodeConnection.with(connection) { [request] client in
                var retried: [String] = []
                var round = 0
                while true {
                    let response = try await client.retryDeadLetters(request, options: options)
                    retried.append(contentsOf: response.leaseIds)
                    round += 1
                    if request.all {
                        progress.update("dlq retry: round \(round), \(retried.count) queued again, \(response.remaining) remaining")
                    }
                    // --all goes round by round while dead letters remain and
                    // each round still retries something.
                    if !request.all || response.remaining == 0 || response.leaseIds.isEmpty { break }
                }
                return retried
            }
            progress.finish()
            var response = DistributedGc_RetryDeadLettersResponse()
            response.leaseIds = retried
            try Printer(format: connection.output).print(response) {
                [["LEASE", "RESULT"]] + retried.map { [$0, "queued again"] } + (retried.isEmpty ? [["-", "no dead letters matched"]] : [])
            }
        }
    }
}
