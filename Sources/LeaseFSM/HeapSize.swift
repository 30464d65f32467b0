/// What values cost on the heap beyond their inline size, for the memory budgets that
/// count what they retain (the event history's `GC_EVENT_HISTORY_BYTES`).
public enum HeapSize {
    /// Heap bytes of a native Swift string: none up to 15 UTF-8 bytes (held inline), else
    /// a 32-byte header and the bytes with a terminating zero, rounded up to 16.
    public static func of(_ string: String) -> Int {
        let count = string.utf8.count
        return count <= 15 ? 0 : (32 + count + 1 + 15) & ~15
    }
}
