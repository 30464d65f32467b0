import ArgumentParser
import GCClient
import Foundation
import GRPCCore

/// `gcctl bench`: a load generator against a node's or cluster's public API.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load a node or cluster through its gRPC API; report throughput, errors and latency percentiles.",
        discussion: """
            Workloads: create (CreateLease), renew (RenewLease), batch-renew (RenewLeases), \
            get (GetLease) and mixed (20% create, 60% renew, 20% get). All but create first \
            create a pool of leases, then renew or read random ones. Leases are DATABASE_ROW \
            objects named bench-<run>-..., without a cleanup endpoint; they are left to expire.
            Errors are counted by gRPC status code and do not stop the run; the exit status \
            is 1 when no operation succeeded.
            """)

    @Argument(help: "What to load (mixed: 20% create, 60% renew, 20% get).")
    var workload: BenchWorkload

    @Option(name: .long, help: "gRPC address host:port (repeatable or comma-separated; connections are spread over them).")
    var endpoint: [String] = [ConnectionOptions.environment("GCCTL_ENDPOINTS") ?? "localhost:50051"]

    @Option(help: "Workers, each with one RPC in flight.")
    var concurrency: Int = 64

    @Option(help: "Seconds to measure.")
    var duration: Double = 10

    @Option(help: "Seconds of load before measuring (not recorded).")
    var warmup: Double = 1

    @Option(help: "Leases per RenewLeases call (batch-renew; 1 to 1000).")
    var batchSize: Int = 100

    @Option(help: "Service that holds the bench's leases.")
    var serviceID: String = "gcctl-bench"

    @Option(help: "Duration of the bench's leases in seconds.")
    var leaseDuration: UInt64 = 300

    @Option(help: "gRPC connections per endpoint.")
    var connections: Int = 4

    @Option(help: "Leases to pre-create for renew, batch-renew, get and mixed (default: concurrency × 16, at least batch size).")
    var poolSize: Int?

    @Flag(help: "GetLease with STALE consistency (served by any node) instead of LINEARIZABLE.")
    var stale = false

    @Option(help: "Seconds before one RPC counts as DEADLINE_EXCEEDED.")
    var timeout: Int = 10

    @Option(name: [.customShort("w"), .customLong("write-out"), .customShort("o"), .customLong("output")], help: "Output format: table or json.")
    var output: OutputFormat = .table

    @OptionGroup var tls: TLSOptions

    var security: ClientSecurity { tls.security() }

    /// `--endpoint` values split at commas.
    var endpoints: [String] {
        endpoint.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        guard !endpoints.isEmpty else { throw ValidationError("give at least one --endpoint") }
        for endpoint in endpoints { _ = try NodeConnection.parseEndpoint(endpoint) }
        guard (1...100_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...100000") }
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be 1...64") }
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be more than 0 and at most 86400 seconds") }
        guard warmup >= 0, warmup <= 3_600 else { throw ValidationError("--warmup must be 0...3600 seconds") }
        guard (1...1_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1...1000 (RenewLeases takes at most 1000 ids)") }
        guard !serviceID.isEmpty else { throw ValidationError("--service-id must not be empty") }
        guard leaseDuration > 0 else { throw ValidationError("--lease-duration must be positive") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let poolSize, poolSize < 1 { throw ValidationError("--pool-size must be positive") }
    }

    func run() async throws {
        var options = CallOptions.defaults
        options.timeout = .seconds(timeout)
        let runTag = String(UInt32.random(in: 0x1000_0000 ... .max), radix: 16)
        let requests = BenchRequests(
            serviceID: serviceID, leaseDurationSeconds: leaseDuration, batchSize: batchSize,
            staleReads: stale, runTag: runTag, options: options)
        let settings = BenchReport.Settings(
            workload: workload, endpoints: endpoints, concurrency: concurrency, connectionsPerEndpoint: connections,
            warmupSeconds: warmup, durationSeconds: duration, serviceID: serviceID,
            objectIDPrefix: requests.objectID(""), batchSize: batchSize)
        let (workload, concurrency, table) = (self.workload, self.concurrency, self.output == .table)
        let poolSize = self.poolSize ?? max(concurrency * 16, batchSize)
        let (warmupTime, measuredTime) = (Self.duration(warmup), Self.duration(duration))

        let report = try await BenchConnections.with(endpoints: endpoints, perEndpoint: connections, security: security) { clients in
            let runner = BenchRunner(
                workload: workload, requests: requests, clients: clients, concurrency: concurrency,
                endpointCount: settings.endpoints.count)
            var pool: BenchRunner.Pool?
            if workload.needsPool {
                let started = ContinuousClock.now
                let created = await runner.createPool(size: poolSize)
                if table {
                    let seconds = BenchReport.number((ContinuousClock.now - started).seconds)
                    Self.note("lease pool: \(created.leaseIDs.count) of \(poolSize) leases created in \(seconds) s")
                }
                guard !created.leaseIDs.isEmpty else {
                    let reasons = created.failures.errorMessages.map { "\($0.key): \($0.value)" }.sorted()
                    throw BenchError(description: "could not create any pool lease (\(reasons.joined(separator: "; ")))")
                }
                pool = created
            }
            let (stats, elapsed) = await runner.run(pool: pool?.leaseIDs ?? [], warmup: warmupTime, duration: measuredTime)
            return BenchReport(settings: settings, pool: pool, stats: stats, elapsed: elapsed)
        }

        switch output {
        case .json: print(try report.json())
        case .table: print(report.table(), terminator: "")
        }
        if report.overall.errors["RESOURCE_EXHAUSTED"] != nil {
            Self.note("RESOURCE_EXHAUSTED: the service holds GC_MAX_LEASES_PER_SERVICE active leases (default 10,000); raise it on the nodes or use another --service-id")
        }
        if report.overall.succeededOps == 0 { throw ExitCode(1) }
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> Duration {
        .milliseconds(Int64((seconds * 1000).rounded()))
    }
}

/// A bench that could not start; printed as "Error: <description>", exit status 1.
struct BenchError: Error, CustomStringConvertible {
    let description: String
}
