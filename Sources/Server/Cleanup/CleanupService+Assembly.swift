import LeaseFSM
import Logging

/// The one place a node's cleanup side is assembled: the reaper, the
/// dispatcher and the service that runs their loops, over a store. `Sidecar`
/// builds it from its configuration, the chaos harness from a run's options
/// (its store wrapped to record what happens, deliveries to a recording sink,
/// sleeps on simulated time), so both run the same parts wired the same way.
extension CleanupService {
    /// How a node's cleanup runs.
    public struct Settings: Sendable {
        /// Time between reaper passes (`GC_CLEANUP_INTERVAL`).
        public var reapInterval: Duration
        /// Leases one reaper proposal expires at most (`GC_REAP_BATCH_SIZE`).
        public var reapBatchSize: Int
        /// Pause between the proposals of one pass (`GC_REAP_BATCH_PAUSE_MS`).
        public var reapBatchPause: Duration
        /// Longest a delivery may take (`GC_CLEANUP_TIMEOUT`).
        public var deliveryTimeout: Duration
        /// Concurrency and per-endpoint bounds of deliveries.
        public var limits: CleanupLimits

        public init(reapInterval: Duration, reapBatchSize: Int = 500, reapBatchPause: Duration = .milliseconds(20),
                    deliveryTimeout: Duration, limits: CleanupLimits = CleanupLimits()) {
            self.reapInterval = reapInterval
            self.reapBatchSize = reapBatchSize
            self.reapBatchPause = reapBatchPause
            self.deliveryTimeout = deliveryTimeout
            self.limits = limits
        }
    }

    /// A reaper and a dispatcher over `store`, and the service that runs them.
    ///
    /// - Parameters:
    ///   - transport: how cleanups are delivered.
    ///   - clock: the wall clock that decides what is due.
    ///   - seed: the dispatcher's retry jitter.
    ///   - sleepClock: what the loops sleep on between passes.
    public init(store: any LeaseStore & MachineReadable, transport: any CleanupTransport, settings: Settings,
                clock: any WallClock, metrics: SidecarMetrics, logger: Logger, seed: UInt64,
                sleepClock: any Clock<Duration> = ContinuousClock()) {
        let reaper = Reaper(store: store, logger: logger, batchSize: settings.reapBatchSize, batchPause: settings.reapBatchPause,
                            metrics: metrics, sleepClock: sleepClock)
        let dispatcher = CleanupDispatcher(store: store, transport: transport, timeout: settings.deliveryTimeout,
                                           limits: settings.limits, metrics: metrics, logger: logger, seed: seed)
        self.init(reaper: reaper, dispatcher: dispatcher, clock: clock, reapInterval: settings.reapInterval, logger: logger,
                  sleepClock: sleepClock)
    }
}
