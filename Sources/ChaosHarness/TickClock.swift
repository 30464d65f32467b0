/// The clock a chaos node's cleanup loops sleep on (``CleanupService`` and
/// its reaper, as in production): the run's simulated time, which moves only
/// when the harness ticks. A sleep lasts whole ticks, at least one. A node the
/// harness has paused does not wake up until it is resumed (a paused process
/// does not run); once the run is over or this incarnation of the node is
/// gone, sleeping throws, which ends the loops.
struct TickClock: Clock {
    struct Instant: InstantProtocol {
        /// Simulated time since the Unix epoch.
        var sinceEpoch: Duration
        func advanced(by duration: Duration) -> Instant { Instant(sinceEpoch: sinceEpoch + duration) }
        func duration(to other: Instant) -> Duration { other.sinceEpoch - sinceEpoch }
        static func < (a: Instant, b: Instant) -> Bool { a.sinceEpoch < b.sinceEpoch }
    }

    let run: ChaosRun
    let node: ChaosNode
    let incarnation: Int

    var now: Instant { Instant(sinceEpoch: .milliseconds(run.time.now())) }
    var minimumResolution: Duration { .milliseconds(run.options.millisecondsPerTick) }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let tick = minimumResolution
        repeat {
            let ticks = max(1, Int((now.duration(to: deadline) / tick).rounded(.up)))
            await run.sleep(ticks: ticks)
            guard !Task.isCancelled, !run.isFinished, node.isCurrent(incarnation) else { throw CancellationError() }
        } while now < deadline || run.fabric.isPaused(node.name)
    }
}
