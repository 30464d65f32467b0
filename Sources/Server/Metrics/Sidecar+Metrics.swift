import Foundation
import LeaseFSM

extension Sidecar {
    /// Values `/metrics` reads when scraped: the reaper's lag, and the Raft
    /// database's size.
    static func addScrapeHooks(_ config: SidecarConfig, metrics: SidecarMetrics, store: RaftLeaseStore, clock: any WallClock) {
        // Weak: the hooks live in `metrics`, which the store's apply hook holds.
        metrics.onScrape { [weak metrics, weak store] in
            let now = clock.now()
            guard let store, let lag = try? await store.read(.stale, { ExpiryLagMetric.lagSeconds($0, now: now) }) else { return }
            metrics?.observeExpiryLag(seconds: lag)
        }
        if config.storageBackend == .sqlite {
            let path = raftDatabasePath(config)
            metrics.onScrape { [weak metrics] in metrics?.observeStorageFiles(databasePath: path) }
        }
    }

    /// The Raft database file in `GC_DATA_DIR` (the one ``openRaftStorage(_:metrics:)`` opens).
    static func raftDatabasePath(_ config: SidecarConfig) -> String {
        (config.dataDirectory as NSString).appendingPathComponent("raft.sqlite")
    }
}
