import Server
import Testing

/// The malloc settings gc-sidecar makes at start: applied unless the operator set the
/// matching glibc variable, which wins.
@Suite("Heap settings")
struct HeapTrimmerTests {
    @Test("an operator's MALLOC_MMAP_THRESHOLD_ or MALLOC_ARENA_MAX wins over the built-in setting")
    func operatorsVariablesWin() {
        #expect(!HeapTrimmer.fixMmapThreshold(environment: ["MALLOC_MMAP_THRESHOLD_": "65536"]))
        #expect(!HeapTrimmer.limitArenas(to: 2, environment: ["MALLOC_ARENA_MAX": "8"]))
    }

    #if canImport(Glibc)
    @Test("on glibc the mmap threshold is fixed at 128 KiB, above NIO's largest read buffer")
    func thresholdIsApplied() {
        #expect(HeapTrimmer.mmapThreshold == 128 << 10)
        #expect(HeapTrimmer.fixMmapThreshold(environment: [:]))
        #expect(HeapTrimmer.trim())
    }
    #endif
}
