import LeaseFSM
import Logging
import ServiceLifecycle

/// Runs the reaper every `GC_CLEANUP_INTERVAL` and the dispatcher every
/// second, until graceful shutdown. In-flight deliveries finish first.
public struct CleanupService: Service {
    /// How often due cleanup jobs are looked for (retries are due at
    /// arbitrary times, so this is finer than the reap interval).
    public static let dispatchPollInterval = Duration.seconds(1)

    let reaper: Reaper
    let dispatcher: CleanupDispatcher
    let clock: any WallClock
    let reapInterval: Duration
    let logger: Logger

    public init(reaper: Reaper, dispatcher: CleanupDispatcher, clock: any WallClock, reapInterval: Duration, logger: Logger) {
        self.reaper = reaper
        self.dispatcher = dispatcher
        self.clock = clock
        self.reapInterval = reapInterval
        self.logger = logger
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await self.every(reapInterval, "reap") { try await reaper.reapOnce(now: clock.now()) }
                }
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { deliveries in
                        await self.every(Self.dispatchPollInterval, "dispatch") {
                            for job in try await dispatcher.claimDueJobs(now: clock.now()) {
                                deliveries.addTask { await dispatcher.attempt(job) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs `body` every `interval` until cancelled; failures are logged once
    /// per streak (not every tick) and the loop goes on.
    private func every(_ interval: Duration, _ name: String, _ body: () async throws -> Void) async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await body()
                if failing { logger.info("\(name) recovered") }
                failing = false
            } catch {
                if !failing { logger.warning("\(name) pass failed; retrying every \(interval)", metadata: ["error": "\(error)"]) }
                failing = true
            }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }
}
