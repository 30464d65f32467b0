import Foundation
import Prometheus
import RaftSQLite

/// The Raft log's storage on this node: how long its commits (fsyncs) take,
/// whether a write failed, and how big its files are.
final class StorageMetrics: Sendable {
    private let commitDuration: DurationHistogram
    private let writeDuration: DurationHistogram
    private let failures: Counter
    private let failed: Gauge
    private let databaseBytes: Gauge
    private let snapshotBytes: Gauge

    init(registry: PrometheusCollectorRegistry) {
        commitDuration = registry.durationHistogram(
            "gc_raft_storage_fsync_duration_seconds", buckets: SidecarMetrics.durationBuckets,
            help: "Duration of the Raft log's flushed commits on this node (SQLite COMMIT: WAL write and fsync); a write that only moves the commit index is not flushed and not counted.")
        writeDuration = registry.durationHistogram(
            "gc_raft_storage_write_duration_seconds", buckets: SidecarMetrics.durationBuckets,
            help: "Duration of the Raft log's flushed write transactions on this node, BEGIN to COMMIT.")
        failures = registry.counter(
            "gc_raft_storage_write_failures_total",
            help: "Raft log writes that failed on this node; after one the node stops acknowledging writes until restarted.")
        failed = registry.gauge(
            "gc_raft_storage_failed", help: "1 once a Raft log write failed on this node (until it restarts), else 0.")
        databaseBytes = registry.gauge(
            "gc_raft_storage_db_size_bytes", help: "Size of this node's Raft log database and its write-ahead log, in bytes.")
        snapshotBytes = registry.gauge(
            "gc_raft_storage_snapshot_size_bytes", help: "Size of this node's staged Raft snapshot files, in bytes.")
    }

    /// Feeds the storage's transactions into these metrics.
    var observer: SQLiteRaftStorageObserver {
        SQLiteRaftStorageObserver(
            committed: { [commitDuration, writeDuration] commit, total in
                commitDuration.record(commit)
                writeDuration.record(total)
            },
            failed: { [failures, failed] in
                failures.increment()
                failed.set(1.0)
            })
    }

    /// Reads the sizes of the database at `path` (with `-wal`) and of its
    /// snapshot directory (`<path>.snapshots/`).
    func observeFiles(databasePath path: String) {
        let files = FileManager.default
        func size(_ file: String) -> Int64 {
            ((try? files.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        databaseBytes.set(Double(size(path) + size(path + "-wal")))
        let directory = path + ".snapshots"
        let snapshots = (try? files.contentsOfDirectory(atPath: directory)) ?? []
        snapshotBytes.set(Double(snapshots.reduce(Int64(0)) { $0 + size(directory + "/" + $1) }))
    }
}

extension SidecarMetrics {
    /// Feeds a ``SQLiteRaftStorage``'s write timings and failures into
    /// `gc_raft_storage_fsync_duration_seconds`,
    /// `gc_raft_storage_write_duration_seconds`,
    /// `gc_raft_storage_write_failures_total` and `gc_raft_storage_failed`.
    public var storageObserver: SQLiteRaftStorageObserver { storage.observer }

    /// Reads the sizes of the Raft database at `path` and its snapshot files
    /// (`gc_raft_storage_db_size_bytes`, `gc_raft_storage_snapshot_size_bytes`).
    public func observeStorageFiles(databasePath path: String) {
        storage.observeFiles(databasePath: path)
    }
}
