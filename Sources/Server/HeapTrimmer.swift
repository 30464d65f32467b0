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
struct HeapTrimmer: Service {
    var interval: Duration = .seconds(10)

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

    /// Returns the heap's free pages to the system now; false when this C
    /// library cannot.
    @discardableResult
    static func trim() -> Bool {
        guard let mallocTrim else { return false }
        _ = mallocTrim(0)
        return true
    }

    func run() async throws {
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
