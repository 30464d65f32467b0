import ServiceLifecycle

/// Drives Raft's logical clock: calls ``RaftLeaseStore/tick()`` every tick
/// interval until graceful shutdown.
struct RaftTicker: Service {
    let store: RaftLeaseStore
    let interval: Duration

    func run() async throws {
        let time = store.cluster.time
        var next = time.now + interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Sleep to a fixed schedule so slow ticks do not stretch timeouts.
            do {
                try await time.sleep(for: next - time.now)
            } catch {
                return
            }
            next = max(next + interval, time.now)
            await store.tick()
        }
    }
}
