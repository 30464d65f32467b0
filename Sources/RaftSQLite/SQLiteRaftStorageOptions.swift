/// Tuning knobs for ``SQLiteRaftStorage``.
public struct SQLiteRaftStorageOptions: Sendable, Equatable {
    /// SQLite's `PRAGMA synchronous` setting for the write-ahead log.
    public enum Synchronous: Sendable, Equatable {
        /// Every commit is fsync'd before `persist` returns. The only setting that keeps Raft's
        /// promise: an acknowledged entry survives power loss. Default.
        case full
        /// **Unsafe for Raft.** Commits are fsync'd only at WAL checkpoints, so an OS crash or
        /// power loss can lose the last acknowledged batches: a node may forget a vote or
        /// entries it acknowledged, which can elect two leaders in a term or lose committed
        /// entries. A process crash alone loses nothing. Use only for tests or benchmarks.
        case normal

        var pragmaValue: String {
            switch self {
            case .full: "FULL"
            case .normal: "NORMAL"
            }
        }
    }

    /// Durability of commits. Defaults to ``Synchronous/full``.
    public var synchronous: Synchronous
    /// How long a write waits for a lock held by another connection before failing (and
    /// poisoning the storage). Only one driver should use a database, so contention means
    /// misuse; the default (1000 ms) just rides out a brief external reader/checkpointer.
    public var busyTimeoutMilliseconds: Int32

    /// SQLite's page cache for the connection, in KiB (`PRAGMA cache_size`). Sized on
    /// purpose, small: the log is appended and compacted, and read back only when the node
    /// starts, so cached pages are rarely hit again; what the cache would hold (the latest
    /// snapshot's pages) the state machine already holds decoded. Default 1024 KiB (SQLite's
    /// own default is about 2000 KiB).
    public var cacheSizeKiB: Int32

    /// Creates options; the defaults are durable (`synchronous=FULL`).
    public init(synchronous: Synchronous = .full, busyTimeoutMilliseconds: Int32 = 1000, cacheSizeKiB: Int32 = 1024) {
        self.synchronous = synchronous
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.cacheSizeKiB = cacheSizeKiB
    }
}
