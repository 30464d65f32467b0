import LeaseFSM
import Prometheus

/// How far the reaper is behind: `gc_cluster_expiry_lag_seconds`, the time
/// since the oldest lease still active should have been expired (its
/// `expires_at` plus the cleanup grace), 0 when none is overdue. Read from
/// the replicated state on every scrape, so every node reports it.
final class ExpiryLagMetric: Sendable {
    private let gauge: Gauge

    init(registry: PrometheusCollectorRegistry) {
        gauge = registry.gauge(
            "gc_cluster_expiry_lag_seconds",
            help: "Seconds since the most overdue active lease should have been expired (expires_at + grace); 0 when the reaper is keeping up. Cluster-wide: aggregate with max.")
    }

    /// Sets the lag (seconds; see ``lagSeconds(_:now:)``).
    func set(_ seconds: Double) {
        gauge.set(seconds)
    }

    /// The lag in seconds at `now` (0 when no lease is overdue).
    static func lagSeconds(_ machine: LeaseStateMachine, now: WallTime) -> Double {
        guard let oldest = machine.expirableLeases(asOf: now, limit: 1).first,
              let expiresAt = machine.lease(oldest)?.expiresAt else { return 0 }
        let grace = Int64(clamping: machine.limits.cleanupGraceSeconds) &* 1000
        let overdue = now.milliseconds &- expiresAt.milliseconds &- grace
        return max(0, Double(overdue) / 1000)
    }
}
