#if canImport(Glibc)
import Glibc
#endif
import ServiceLifecycle

/// Gives freed heap memory back to the operating system (DESIGN.md,
/// "Memory").
///
/// glibc's malloc keeps memory that was freed in the middle of its heaps
/// (and in per-thread arenas) for reuse; after a burst (100,000 leases
/// released, a snapshot encoded, a restart's replay) the resident size would
/// stay at its peak. Every `interval` this calls `malloc_trim(0)`, which
/// returns the free pages of every arena. It holds an arena's lock while it
/// walks that arena's free chunks, a few milliseconds at most.
///
/// A no-op where the C library has no `malloc_trim` (looked up at run time).
public struct HeapTrimmer: Service {
    /// Time between two trims.
    public var interval: Duration = .seconds(10)

    /// A trimmer that trims every `interval` once run.
    public init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    private typealias MallocTrim = @convention(c) (Int) -> Int32

    /// glibc's `malloc_trim`, or nil on another C library.
    private static let mallocTrim: MallocTrim? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: MallocTrim.self)
        #else
        return nil
        #endif
    }()

    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32

    /// glibc's `M_ARENA_MAX` parameter of `mallopt`.
    private static let arenaMaxParameter: Int32 = -8

    /// Caps glibc's malloc arenas at `arenas` unless `MALLOC_ARENA_MAX` is
    /// set (it wins, so an operator can undo this without a rebuild). glibc
    /// gives each thread that meets a locked arena a new one, up to 8 per
    /// core, and memory freed in one arena serves only that arena: after a
    /// burst each holds its own peak. Call before threads start.
    @discardableResult
    public static func limitArenas(to arenas: Int32, environment: [String: String]) -> Bool {
        mallopt(arenaMaxParameter, arenas, unlessSet: "MALLOC_ARENA_MAX", in: environment)
    }

    /// glibc's `M_MMAP_THRESHOLD` parameter of `mallopt`.
    private static let mmapThresholdParameter: Int32 = -3

    /// The size from which an allocation gets its own mapping: 128 KiB, glibc's
    /// starting value. Above NIO's largest read buffer (64 KiB), so no socket read
    /// pays for a mapping; below a lease table's chunk (1,024 leases).
    public static let mmapThreshold: Int32 = 128 << 10

    /// Keeps glibc's mmap threshold at `bytes` unless `MALLOC_MMAP_THRESHOLD_` is set.
    ///
    /// By default glibc raises the threshold to the size of each mapped block that is
    /// freed (up to 32 MiB): after the first large table or snapshot buffer is freed,
    /// every later large block comes from the heap, where one live block keeps the
    /// freed space around it from being returned. With the threshold fixed, large
    /// blocks (table chunks, hash tables, buffers) are mapped on their own and given
    /// back whole when freed. Measured with 100,000 leases released: 83 → 75 MiB per
    /// node (BENCHMARKS.md, "Memory per node"). Setting it also fixes glibc's trim
    /// threshold at its default (128 KiB). Call before threads start.
    @discardableResult
    public static func fixMmapThreshold(at bytes: Int32 = mmapThreshold, environment: [String: String]) -> Bool {
        mallopt(mmapThresholdParameter, bytes, unlessSet: "MALLOC_MMAP_THRESHOLD_", in: environment)
    }

    /// Sets glibc's malloc `parameter` to `value` unless the operator set `variable`, the
    /// environment variable glibc reads for it (it wins). False if not set.
    private static func mallopt(_ parameter: Int32, _ value: Int32, unlessSet variable: String,
                                in environment: [String: String]) -> Bool {
        #if canImport(Glibc)
        guard environment[variable] == nil, let symbol = dlsym(nil, "mallopt") else { return false }
        return unsafeBitCast(symbol, to: Mallopt.self)(parameter, value) == 1
        #else
        return false
        #endif
    }

    /// Returns the heap's free pages to the system now; false when this C
    /// library cannot.
    @discardableResult
    public static func trim() -> Bool {
        guard let mallocTrim else { return false }
        _ = mallocTrim(0)
        return true
    }

    /// Trims every ``interval`` until graceful shutdown.
    public func run() async throws {
        guard Self.mallocTrim != nil else { return }
        let interval = self.interval
        // Cancelled (its sleep included) as soon as shutdown begins.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await ContinuousClock().sleep(for: interval)
                Self.trim()
            }
        }
    }
}
