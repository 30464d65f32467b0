import ArgumentParser
import Foundation
import GCClient
import GCProto
import GRPCCore
import Histogram
import Synchronization

/// Mass-expiry benchmark against a running node (BENCHMARKS.md "Cleanup
/// delivery"): fills the node with leases whose cleanup goes to a local sink,
/// makes them all expire at once, and measures
/// - cleanups/s the sink receives (first to last delivery),
/// - create latency of a steady probe client before (idle) and during the
///   mass expiry.
///
/// Start the node with `GC_MIN_LEASE_DURATION=1 GC_CLEANUP_INTERVAL=1
/// GC_CLEANUP_GRACE_PERIOD=0 GC_MAX_LEASES_PER_SERVICE=1000000`, and
/// `GC_CLEANUP_ENDPOINT_RATE=0` to measure delivery without a rate limit.
@main
struct CleanupBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup-bench", abstract: "Cleanup throughput and write latency during a mass expiry.")

    @Option(help: "Node client address(es), comma-separated.") var endpoint = "127.0.0.1:50051"
    @Option(help: "Sink kind: http or grpc.") var sink = "http"
    @Option(help: "Leases that expire together.") var leases = 100_000
    @Option(help: "Creates in flight while filling.") var concurrency = 64
    @Option(help: "Probe creates per second (latency samples).") var probeRate = 50
    @Option(help: "Seconds of idle probing before the expiry.") var idleSeconds = 10
    @Option(help: "Give up waiting for cleanups after this many seconds.") var timeout = 600

    func run() async throws {
        guard let kind = SinkKind(rawValue: sink) else { throw ValidationError("--sink must be http or grpc") }
        let counter = DeliveryCounter()
        let endpoints = endpoint.split(separator: ",").map(String.init)
        let (total, workers, probeRate, idleSeconds, timeout) = (leases, concurrency, probeRate, idleSeconds, timeout)
        try await withSink(kind, counter: counter) { target in
            print("sink: \(kind.rawValue) at \(target)")
            var config = GCClient.Configuration()
            config.retryDeadline = .seconds(60)
            try await GCClient.with(endpoints: endpoints, configuration: config) { client in
                let run = "\(UInt32.random(in: 0 ... .max))"
                // 1. Fill: leases that will not expire on their own during the fill.
                let fillStart = ContinuousClock.now
                let ids = try await fill(client, total: total, workers: workers, target: target, kind: kind, run: run)
                let fillTime = ContinuousClock.now - fillStart
                print("filled \(ids.count) leases in \(fillTime) (\(rate(ids.count, fillTime)) creates/s)")

                // 2. Probe while idle, then shorten every lease to 1 s and keep probing.
                let probe = Probe(client: client, ratePerSecond: probeRate, run: run)
                let probing = Task { await probe.run() }
                try await Task.sleep(for: .seconds(idleSeconds))
                probe.phase.withLock { $0 = .expiring }
                let shortenStart = ContinuousClock.now
                for chunk in stride(from: 0, to: ids.count, by: 1000).map({ Array(ids[$0..<min($0 + 1000, ids.count)]) }) {
                    _ = try await client.renewLeases(chunk, serviceID: "bench-mass-\(run)", extend: .seconds(1))
                }
                print("shortened every lease to 1 s in \(ContinuousClock.now - shortenStart)")
                let deadline = ContinuousClock.now + .seconds(timeout)
                while counter.snapshot.distinctKeys < ids.count && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                probe.phase.withLock { $0 = .done }
                probing.cancel()
                await probing.value

                let s = counter.snapshot
                print("")
                print("deliveries: \(s.deliveries) (distinct objects: \(s.distinctKeys) of \(ids.count))")
                if let first = s.first, let last = s.last, s.distinctKeys > 1 {
                    let span = last - first
                    print("cleanups/s (\(kind.rawValue) sink): \(rate(s.distinctKeys, span)) over \(span) (first to last delivery)")
                    print("from shortening to last delivery: \(last - shortenStart)")
                }
                probe.report()
            }
        }
    }

    private func fill(_ client: GCClient, total: Int, workers: Int, target: String, kind: SinkKind, run: String) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var ids: [String] = []
                    for i in stride(from: worker, to: total, by: workers) {
                        var cleanup = DistributedGc_CleanupConfig()
                        if kind == .http { cleanup.cleanupHTTPEndpoint = target } else { cleanup.cleanupEndpoint = target }
                        cleanup.maxRetries = 5
                        cleanup.retryDelaySeconds = 1
                        let lease = try await client.createLease(
                            objectID: "mass-\(run)-\(i)", objectType: .temporaryFile, serviceID: "bench-mass-\(run)",
                            duration: .seconds(3600), cleanup: cleanup)
                        ids.append(lease.leaseID)
                    }
                    return ids
                }
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
    }
}

/// Creates leases at a steady rate and records their latency by phase.
final class Probe: Sendable {
    enum Phase: Sendable { case idle, expiring, done }

    let client: GCClient
    let ratePerSecond: Int
    let run: String
    let phase = Mutex(Phase.idle)
    private let samples = Mutex<(idle: Histogram<UInt64>, expiring: Histogram<UInt64>, failures: Int)>(
        (Probe.histogram(), Probe.histogram(), 0))

    init(client: GCClient, ratePerSecond: Int, run: String) {
        self.client = client
        self.ratePerSecond = max(1, ratePerSecond)
        self.run = run
    }

    static func histogram() -> Histogram<UInt64> {
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        h.autoResize = true
        return h
    }

    func run() async {
        let interval = Duration.seconds(1) / ratePerSecond
        var next = ContinuousClock.now
        var n = 0
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled, phase.withLock({ $0 }) != .done {
                next += interval
                n += 1
                let i = n
                group.addTask {
                    let started = ContinuousClock.now
                    let during = self.phase.withLock { $0 }
                    do {
                        _ = try await self.client.createLease(
                            objectID: "probe-\(self.run)-\(i)", objectType: .cacheEntry, serviceID: "bench-probe-\(self.run)",
                            duration: .seconds(3600))
                        let micros = UInt64((ContinuousClock.now - started) / .microseconds(1))
                        self.samples.withLock { s in
                            if during == .idle { s.idle.record(micros) } else if during == .expiring { s.expiring.record(micros) }
                        }
                    } catch {
                        // Calls cut short when the run ends are not failures.
                        if self.phase.withLock({ $0 }) != .done { self.samples.withLock { $0.failures += 1 } }
                    }
                }
                try? await Task.sleep(until: next)
            }
        }
    }

    func report() {
        let s = samples.withLock { $0 }
        print("")
        print("create latency of the probe (\(ratePerSecond)/s), ms:")
        print("phase      samples   p50     p90     p99     p99.9   max")
        for (name, h) in [("idle", s.idle), ("expiring", s.expiring)] {
            func ms(_ q: Double) -> String { String(format: "%.1f", Double(h.valueAtPercentile(q)) / 1000) }
            print("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(h.totalCount).padding(toLength: 9, withPad: " ", startingAt: 0)) \(ms(50))   \(ms(90))   \(ms(99))   \(ms(99.9))   \(String(format: "%.1f", Double(h.max) / 1000))")
        }
        if s.failures > 0 { print("probe failures: \(s.failures)") }
    }
}

func rate(_ count: Int, _ span: Duration) -> String {
    let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
    return seconds > 0 ? String(format: "%.0f", Double(count) / seconds) : "-"
}
