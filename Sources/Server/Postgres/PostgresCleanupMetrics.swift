import Prometheus

/// The cleanup claims of one sidecar in PostgreSQL mode (node-local: sum
/// over sidecars). Deliveries themselves are counted by the usual
/// `gc_cleanup_*_total` counters.
final class PostgresCleanupMetrics: Sendable {
    private let claims: Counter
    private let takenOver: Counter
    private let refused: Counter
    private let released: Counter

    init(registry: PrometheusCollectorRegistry) {
        let nodeLocal = " Node-local: sum over sidecars for the cluster."
        claims = registry.counter(
            "gc_pg_claims_total", help: "Cleanup jobs this sidecar claimed for delivery (PostgreSQL mode)." + nodeLocal)
        takenOver = registry.counter(
            "gc_pg_claims_taken_over_total",
            help: "Cleanup jobs this sidecar claimed after another sidecar's claim on them had expired (it crashed or paused)." + nodeLocal)
        refused = registry.counter(
            "gc_pg_outcomes_refused_total",
            help: "Cleanup outcomes of this sidecar refused as stale: its claim had expired and the job was taken over or changed." + nodeLocal)
        released = registry.counter(
            "gc_pg_claims_released_total",
            help: "Claimed cleanup jobs this sidecar gave back undelivered (no room at the endpoint, or shutdown)." + nodeLocal)
    }

    func recordClaims(_ count: Int, takenOver: Int) {
        if count > 0 { claims.increment(by: Int64(count)) }
        if takenOver > 0 { self.takenOver.increment(by: Int64(takenOver)) }
    }

    func recordRefused(_ count: Int) {
        if count > 0 { refused.increment(by: Int64(count)) }
    }

    func recordReleased(_ count: Int) {
        if count > 0 { released.increment(by: Int64(count)) }
    }
}
