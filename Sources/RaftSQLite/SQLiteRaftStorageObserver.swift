/// Told how each write transaction of a ``SQLiteRaftStorage`` went, so the
/// embedding program can export it (metrics) without this module depending
/// on a metrics library. Called synchronously on the writing thread: keep it
/// cheap and non-blocking.
public struct SQLiteRaftStorageObserver: Sendable {
    /// A transaction committed: `commit` is how long `COMMIT` took (with
    /// `synchronous=FULL`, the WAL write and its fsync), `total` the whole
    /// transaction from `BEGIN`.
    public var committed: @Sendable (_ commit: Duration, _ total: Duration) -> Void
    /// A transaction failed; the storage is now poisoned (every later write fails).
    public var failed: @Sendable () -> Void

    /// An observer calling `committed` and `failed`.
    public init(committed: @escaping @Sendable (_ commit: Duration, _ total: Duration) -> Void,
                failed: @escaping @Sendable () -> Void) {
        self.committed = committed
        self.failed = failed
    }
}
