import Logging

/// Runs `body` until the task is cancelled, sleeping on `clock` for the
/// interval it returns. A failure is logged once per streak (not every
/// round), followed by a one-second pause, and the loop goes on; the first
/// pass after a streak logs the recovery.
///
/// The cleanup loops of both backends run on it (``CleanupService``,
/// ``PostgresCleanupService``); tests drive them with a fast clock.
func repeatingPass<C: Clock>(_ name: String, logger: Logger, clock: C, _ body: () async throws -> Duration) async
    where C.Duration == Duration {
    var failing = false
    while !Task.isCancelled {
        var pause = Duration.seconds(1)
        do {
            pause = try await body()
            if failing { logger.info("\(name) recovered") }
            failing = false
        } catch {
            if !failing { logger.warning("\(name) pass failed; retrying every second", metadata: ["error": "\(error)"]) }
            failing = true
        }
        do { try await clock.sleep(for: pause) } catch { return }
    }
}

/// Sleeps for `duration` on `clock` (any clock measuring in `Duration`,
/// such as a test's fast clock).
func sleep<C: Clock>(on clock: C, for duration: Duration) async throws where C.Duration == Duration {
    try await clock.sleep(for: duration)
}
