import ArgumentParser
import Foundation
import GCClient
import GCProto
import GRPCCore

/// `gcctl load`: puts an exact number of leases into a cluster and takes them
/// out again, for measurements that need a known amount of data (e.g.
/// `scripts/measure-memory.sh`), unlike `gcctl bench`, which runs for a time.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Create an exact number of leases (ids saved to a file), or release the leases a file names.",
        subcommands: [Create.self, Release.self])

    /// Connection and pacing options both subcommands share.
    struct Options: ParsableArguments {
        @Option(name: .long, help: "gRPC address host:port (repeatable or comma-separated; connections are spread over them).")
        var endpoint: [String] = [ConnectionOptions.environment("GCCTL_ENDPOINTS") ?? "localhost:50051"]

        @Option(help: "Calls in flight at once.")
        var concurrency: Int = 128

        @Option(help: "gRPC connections per endpoint.")
        var connections: Int = 2

        @Option(help: "Service that holds the leases.")
        var serviceID: String = "gcctl-load"

        @Option(help: "File of lease ids, one a line (written by create, read by release).")
        var idsFile: String

        @Option(help: "Seconds before one RPC counts as DEADLINE_EXCEEDED.")
        var timeout: Int = 30

        @OptionGroup var tls: TLSOptions

        var endpoints: [String] {
            endpoint.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func validate() throws {
            guard !endpoints.isEmpty else { throw ValidationError("give at least one --endpoint") }
            for endpoint in endpoints { _ = try NodeConnection.parseEndpoint(endpoint) }
            guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...10000") }
            guard (1...64).contains(connections) else { throw ValidationError("--connections must be 1...64") }
            guard !serviceID.isEmpty else { throw ValidationError("--service-id must not be empty") }
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        }

        var callOptions: CallOptions {
            var options = CallOptions.defaults
            options.timeout = .seconds(timeout)
            return options
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create --count leases (DATABASE_ROW objects load-<run>-<n>, no cleanup endpoint); write their ids to --ids-file.",
            discussion: "A create refused with UNAVAILABLE is retried on the other endpoints. Exits 1 unless every lease was created.")

        @OptionGroup var options: Options

        @Option(help: "Leases to create.")
        var count: Int

        @Option(help: "Duration of the leases in seconds.")
        var leaseDuration: UInt64 = 3600

        func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be positive") }
            guard leaseDuration > 0 else { throw ValidationError("--lease-duration must be positive") }
        }

        func run() async throws {
            let runTag = String(UInt32.random(in: 0x1000_0000 ... .max), radix: 16)
            let requests = BenchRequests(
                serviceID: options.serviceID, leaseDurationSeconds: leaseDuration, batchSize: 1,
                staleReads: false, runTag: runTag, options: options.callOptions)
            let (endpoints, concurrency, count) = (options.endpoints, options.concurrency, self.count)
            let started = ContinuousClock.now
            let pool = try await BenchConnections.with(
                endpoints: endpoints, perEndpoint: options.connections, security: options.tls.security()
            ) { clients in
                let runner = BenchRunner(
                    workload: .create, requests: requests, clients: clients, concurrency: concurrency,
                    endpointCount: endpoints.count)
                return await runner.createPool(size: count)
            }
            try Data(pool.leaseIDs.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: options.idsFile))
            let seconds = (ContinuousClock.now - started).seconds
            print("created \(pool.leaseIDs.count) of \(count) leases in \(BenchReport.number(seconds)) s")
            for (code, n) in pool.failures.errors.sorted(by: { $0.key < $1.key }) { print("  failed \(code): \(n)") }
            if pool.leaseIDs.count != count { throw ExitCode(1) }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release every lease --ids-file names.",
            discussion: "A release refused with UNAVAILABLE is retried on the other endpoints; NOT_FOUND on such a retry counts as released (the first attempt was applied). Exits 1 unless every lease was released.")

        @OptionGroup var options: Options

        func run() async throws {
            let text = try String(contentsOfFile: options.idsFile, encoding: .utf8)
            let ids = text.split(whereSeparator: \.isNewline).map(String.init)
            let (endpoints, concurrency, serviceID, callOptions) =
                (options.endpoints, options.concurrency, options.serviceID, options.callOptions)
            let started = ContinuousClock.now
            let failures = try await BenchConnections.with(
                endpoints: endpoints, perEndpoint: options.connections, security: options.tls.security()
            ) { clients in
                await withTaskGroup(of: String?.self) { group in
                    var failures: [String: Int] = [:]
                    var next = 0
                    func startNext() {
                        let index = next
                        next += 1
                        group.addTask {
                            await Self.release(ids[index], serviceID: serviceID, index: index, clients: clients,
                                               endpointCount: endpoints.count, options: callOptions)
                        }
                    }
                    while next < min(ids.count, concurrency) { startNext() }
                    while let failure = await group.next() {
                        if let failure { failures[failure, default: 0] += 1 }
                        if next < ids.count { startNext() }
                    }
                    return failures
                }
            }
            let seconds = (ContinuousClock.now - started).seconds
            let failed = failures.values.reduce(0, +)
            print("released \(ids.count - failed) of \(ids.count) leases in \(BenchReport.number(seconds)) s")
            for (code, n) in failures.sorted(by: { $0.key < $1.key }) { print("  failed \(code): \(n)") }
            if failed > 0 { throw ExitCode(1) }
        }

        /// Releases one lease; returns the gRPC status name of the failure, or nil.
        static func release(
            _ id: String, serviceID: String, index: Int, clients: [BenchClient], endpointCount: Int, options: CallOptions
        ) async -> String? {
            var request = DistributedGc_ReleaseLeaseRequest()
            request.leaseID = id
            request.serviceID = serviceID
            var failure = "CLIENT_ERROR"
            for attempt in 0..<max(1, endpointCount) {
                do {
                    let response = try await clients[(index + attempt) % clients.count].releaseLease(request, options: options)
                    return response.success ? nil : "NOT_RELEASED"
                } catch {
                    guard case .failed(let code, _) = BenchRequests.failure(error) else { return "CLIENT_ERROR" }
                    // An attempt that failed as UNAVAILABLE (e.g. a forward that timed out) may
                    // have been applied: its lease, released and forgotten, is then NOT_FOUND.
                    if attempt > 0 && code == "NOT_FOUND" { return nil }
                    failure = code
                    guard code == "UNAVAILABLE" else { break }
                }
            }
            return failure
        }
    }
}
