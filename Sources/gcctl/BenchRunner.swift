import Raft

/// Runs the workers of a bench: first the lease pool, then the timed load.
struct BenchRunner: Sendable {
    let workload: BenchWorkload
    let requests: BenchRequests
    let clients: [BenchClient]
    /// Workers (and so RPCs) in flight at once.
    let concurrency: Int
    /// Endpoints the clients are spread over: how many different nodes a
    /// failed pool create may be retried on.
    let endpointCount: Int

    /// The leases a pool build created, and the creates that failed.
    struct Pool: Sendable {
        var leaseIDs: [String] = []
        var failures = OperationStats()
    }

    /// Creates `size` leases, `concurrency` at a time, spread over the
    /// clients. A create that fails with `UNAVAILABLE` (e.g. "not the
    /// leader") is retried once on each other endpoint.
    func createPool(size: Int) async -> Pool {
        await withTaskGroup(of: Result<String, PoolCreateError>.self) { group in
            var pool = Pool()
            var next = 0
            func startNext() {
                let index = next
                next += 1
                group.addTask { await createPoolLease(index) }
            }
            while next < min(size, concurrency) { startNext() }
            while let result = await group.next() {
                switch result {
                case .success(let id): pool.leaseIDs.append(id)
                case .failure(let error): pool.failures.record(error.outcome, microseconds: 0)
                }
                if next < size { startNext() }
            }
            return pool
        }
    }

    /// Wraps a failed outcome so a task group can return it as a `Result`.
    struct PoolCreateError: Error {
        let outcome: OperationOutcome
    }

    private func createPoolLease(_ index: Int) async -> Result<String, PoolCreateError> {
        var last = OperationOutcome.failed(code: "CLIENT_ERROR", message: "no client")
        for attempt in 0..<max(1, endpointCount) {
            let client = clients[(index + attempt) % clients.count]
            do {
                return .success(try await requests.createLease(objectID: requests.objectID("p\(index)"), on: client))
            } catch {
                last = BenchRequests.failure(error)
                guard case .failed("UNAVAILABLE", _) = last else { break }
            }
        }
        return .failure(PoolCreateError(outcome: last))
    }

    /// Runs `concurrency` workers, each issuing one RPC at a time, for
    /// `warmup` (not recorded) plus `duration`. Operations that start during
    /// the measured window are recorded, including the last ones, which may
    /// finish just after it; `elapsed` runs from the start of the window to
    /// the last recorded completion.
    func run(pool: [String], warmup: Duration, duration: Duration) async -> (stats: BenchStats, elapsed: Duration) {
        let measureStart = ContinuousClock.now + warmup
        let end = measureStart + duration
        return await withTaskGroup(of: (BenchStats, ContinuousClock.Instant).self) { group in
            for worker in 0..<concurrency {
                let client = clients[worker % clients.count]
                group.addTask {
                    var random = SplitMix64(seed: UInt64.random(in: .min ... .max))
                    var stats = BenchStats()
                    var lastFinish = measureStart
                    var sequence = 0
                    while true {
                        let began = ContinuousClock.now
                        if began >= end || Task.isCancelled { break }
                        let operation = workload.nextOperation(using: &random)
                        let outcome = await requests.perform(
                            operation, name: "\(worker)-\(sequence)", pool: pool, on: client, using: &random)
                        sequence += 1
                        let finished = ContinuousClock.now
                        if began >= measureStart {
                            stats.record(operation, outcome, microseconds: Self.microseconds(finished - began))
                            lastFinish = max(lastFinish, finished)
                        }
                    }
                    return (stats, lastFinish)
                }
            }
            var merged = BenchStats()
            var lastFinish = measureStart
            for await (stats, finish) in group {
                merged.merge(stats)
                lastFinish = max(lastFinish, finish)
            }
            return (merged, lastFinish - measureStart)
        }
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }
}

extension Duration {
    /// This duration in (fractional) seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
