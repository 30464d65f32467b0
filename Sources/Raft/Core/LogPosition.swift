/// Position of an entry in the log, returned by proposals so the application can match the entry
/// when it commits (and notice it was overwritten if a different term shows up at that index).
public struct LogPosition: Sendable, Hashable {
    public var term: UInt64
    public var index: UInt64

    public init(term: UInt64, index: UInt64) {
        self.term = term
        self.index = index
    }
}
