import ServiceLifecycle

/// Drives Raft's logical clock: calls ``RaftLeaseStore/tick()`` every tick
/// interval until graceful shutdown.
struct RaftTicker: Service {
    let store: RaftLeaseStore
    let interval: Duration

    func run() async throws {
        let clock = ContinuousClock()
        var next = clock.now + interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Sleep to a fixed schedule so slow ticks do not stretch timeouts.
            do {
                try await clock.sleep(until: next)
            } catch {
                return
            }
            next = max(next + interval, clock.now)
            await store.tick()
        }
    }
}
