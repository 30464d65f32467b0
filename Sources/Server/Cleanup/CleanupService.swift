import LeaseFSM
import Logging
import ServiceLifecycle

/// Runs the reaper every `GC_CLEANUP_INTERVAL` and the dispatcher
/// continuously, until graceful shutdown. In-flight deliveries finish first.
public struct CleanupService: Service {
    /// How often the dispatcher looks for due jobs while it has nothing in
    /// flight (retries fall due at arbitrary times; new jobs appear when
    /// leases end).
    public static let idlePollInterval = Duration.milliseconds(100)
    /// How soon it looks again while deliveries are going on (slots free up
    /// as they finish).
    public static let busyPollInterval = Duration.milliseconds(5)

    /// Expires due leases, every `reapInterval`.
    public let reaper: Reaper
    /// Delivers due cleanups, continuously.
    public let dispatcher: CleanupDispatcher
    let clock: any WallClock
    let reapInterval: Duration
    let logger: Logger
    let sleepClock: any Clock<Duration>

    /// - Parameters:
    ///   - clock: the wall clock that decides which leases and jobs are due.
    ///   - sleepClock: what the loops sleep on between passes (tests pass a fast one).
    public init(reaper: Reaper, dispatcher: CleanupDispatcher, clock: any WallClock, reapInterval: Duration, logger: Logger,
                sleepClock: any Clock<Duration> = ContinuousClock()) {
        self.reaper = reaper
        self.dispatcher = dispatcher
        self.clock = clock
        self.reapInterval = reapInterval
        self.logger = logger
        self.sleepClock = sleepClock
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await self.repeating("reap") {
                        try await reaper.reapOnce(now: clock.now())
                        return reapInterval
                    }
                }
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { deliveries in
                        await self.repeating("dispatch") {
                            // One task per claimed batch; its requests run
                            // concurrently inside it.
                            let claimed = try await dispatcher.claimDueJobs(now: clock.now())
                            if !claimed.isEmpty {
                                deliveries.addTask { await dispatcher.deliver(claimed) }
                            }
                            let busy = !claimed.isEmpty || dispatcher.inFlightCount > 0
                            return busy ? Self.busyPollInterval : Self.idlePollInterval
                        }
                    }
                }
            }
        }
        dispatcher.transport.shutdown()
    }

    private func repeating(_ name: String, _ body: () async throws -> Duration) async {
        await repeatingPass(name, logger: logger, clock: sleepClock, body)
    }
}
