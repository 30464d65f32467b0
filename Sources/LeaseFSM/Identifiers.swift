/// A point in wall-clock time, in milliseconds since the Unix epoch.
///
/// The state machine never reads a clock: every command carries the time the
/// leader stamped on it, and the state machine's "now" is the largest stamp it
/// has applied (DESIGN.md, "Time").
public struct WallTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public init(seconds: Int64) {
        self.milliseconds = seconds &* 1000
    }

    public static let zero = WallTime(milliseconds: 0)

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    /// This time moved by `seconds` (saturating, so huge inputs cannot trap).
    public func adding(seconds: UInt64) -> WallTime {
        let ms = seconds > UInt64(Int64.max / 1000) ? Int64.max / 2 : Int64(seconds) * 1000
        let (sum, overflow) = milliseconds.addingReportingOverflow(ms)
        return WallTime(milliseconds: overflow ? Int64.max : sum)
    }

    public func adding(milliseconds delta: Int64) -> WallTime {
        let (sum, overflow) = milliseconds.addingReportingOverflow(delta)
        return WallTime(milliseconds: overflow ? (delta > 0 ? Int64.max : Int64.min) : sum)
    }

    public var description: String { "\(milliseconds)ms" }
}

/// The identifier of a lease, assigned by the cluster when the create command
/// is applied: the command's log index as 16 hex digits, a dash, and a random
/// suffix chosen by the proposer. Lease ids therefore sort in creation order,
/// which gives `ListLeases` its stable paging order, and never repeat even if
/// an in-memory cluster restarts its log at index 1.
///
/// Ids in that form with an 8-digit suffix (every id this cluster assigns)
/// are held as two integers, with no heap storage: a lease id appears in
/// several indexes of every lease, and as a 25-byte string each would cost
/// its own allocation. Any other string (ids made by tests or older
/// clusters) is kept as written. Either way an id equals, hashes and sorts
/// exactly as its ``rawValue`` does.
public struct LeaseID: Hashable, Comparable, Sendable, CustomStringConvertible {
    private enum Storage: Hashable, Sendable {
        /// `index` as 16 lowercase hex digits, `-`, `suffix` as 8.
        case compact(index: UInt64, suffix: UInt32)
        /// Any other id, as written (boxed, so that this enum stays 16
        /// bytes: a `String` payload would make it 24).
        case text(Text)
    }

    private final class Text: Hashable, Sendable {
        let value: String
        init(_ value: String) { self.value = value }
        static func == (lhs: Text, rhs: Text) -> Bool { lhs.value == rhs.value }
        func hash(into hasher: inout Hasher) { hasher.combine(value) }
    }

    private let storage: Storage

    public init(_ rawValue: String) {
        var rawValue = rawValue
        let compact = rawValue.withUTF8 { Self.parseCompact($0) }
        storage = compact.map { .compact(index: $0.index, suffix: $0.suffix) } ?? .text(Text(rawValue))
    }

    /// The id whose ``rawValue`` is these UTF-8 bytes (a snapshot's
    /// record): the assigned form is read without building a string.
    public init(utf8: UnsafeRawBufferPointer) {
        let bytes = utf8.assumingMemoryBound(to: UInt8.self)
        if let compact = Self.parseCompact(bytes) {
            storage = .compact(index: compact.index, suffix: compact.suffix)
        } else {
            storage = .text(Text(String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// The id of the lease created by the command at `index` with `suffix`.
    public init(index: UInt64, suffix: String) {
        var suffix = suffix
        if let value = suffix.withUTF8({ Self.parseHex($0, digits: 8) }) {
            storage = .compact(index: index, suffix: UInt32(value))
        } else {
            let hex = String(index, radix: 16)
            storage = .text(Text(String(repeating: "0", count: max(0, 16 - hex.count)) + hex + "-" + suffix))
        }
    }

    /// The id as a string: what clients see and send.
    public var rawValue: String {
        switch storage {
        case .text(let text):
            return text.value
        case .compact(let index, let suffix):
            return String(unsafeUninitializedCapacity: Self.compactLength) { Self.format(index, suffix, into: $0) }
        }
    }

    /// Heap bytes this id holds beyond its inline 16: none in the assigned form; else its box
    /// (a 16-byte object header and the string) and the string's own storage.
    public var heapBytes: Int {
        switch storage {
        case .compact: 0
        case .text(let text): 32 + HeapSize.of(text.value)
        }
    }

    /// Calls `body` with the UTF-8 bytes of ``rawValue``, built on the stack
    /// for an id in the assigned form.
    public func withUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        switch storage {
        case .text(let text):
            var value = text.value
            return try value.withUTF8(body)
        case .compact(let index, let suffix):
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.compactLength) { buffer in
                try body(UnsafeBufferPointer(rebasing: buffer[..<Self.format(index, suffix, into: buffer)]))
            }
        }
    }

    public static func < (lhs: LeaseID, rhs: LeaseID) -> Bool {
        if case .compact(let li, let ls) = lhs.storage, case .compact(let ri, let rs) = rhs.storage {
            // Fixed-width lowercase hex sorts as the numbers do.
            return (li, ls) < (ri, rs)
        }
        return lhs.rawValue < rhs.rawValue
    }

    public var description: String { rawValue }

    /// Bytes of an id in the assigned form.
    private static let compactLength = 25

    /// Writes the assigned form of `index` and `suffix` (``compactLength``
    /// bytes) at the start of `buffer`; returns the count.
    private static func format(_ index: UInt64, _ suffix: UInt32, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        writeHex(index, digits: 16, into: buffer, at: 0)
        buffer[16] = UInt8(ascii: "-")
        writeHex(UInt64(suffix), digits: 8, into: buffer, at: 17)
        return compactLength
    }

    /// Index and suffix of an id in the assigned form, or nil.
    private static func parseCompact(_ utf8: UnsafeBufferPointer<UInt8>) -> (index: UInt64, suffix: UInt32)? {
        guard utf8.count == compactLength, utf8[16] == UInt8(ascii: "-"),
              let index = parseHex(UnsafeBufferPointer(rebasing: utf8[0..<16]), digits: 16),
              let suffix = parseHex(UnsafeBufferPointer(rebasing: utf8[17..<25]), digits: 8) else { return nil }
        return (index, UInt32(suffix))
    }

    /// The value of exactly `digits` lowercase hex digits, or nil.
    private static func parseHex(_ utf8: UnsafeBufferPointer<UInt8>, digits: Int) -> UInt64? {
        guard utf8.count == digits else { return nil }
        var value: UInt64 = 0
        for byte in utf8 {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte &- UInt8(ascii: "a") &+ 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    private static func writeHex(_ value: UInt64, digits: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        var value = value
        for i in stride(from: offset + digits - 1, through: offset, by: -1) {
            let digit = UInt8(truncatingIfNeeded: value & 0xF)
            buffer[i] = digit < 10 ? UInt8(ascii: "0") &+ digit : UInt8(ascii: "a") &+ digit &- 10
            value >>= 4
        }
    }
}

/// Identifies a cleanup job. Assigned from a counter in the replicated state,
/// so every node gives the same job the same id.
public typealias JobID = UInt64

/// The kind of object a lease refers to; raw values are the wire enum's.
public enum ObjectType: Int32, Sendable, CaseIterable, Comparable {
    case unknown = 0
    case databaseRow = 1
    case blobStorage = 2
    case temporaryFile = 3
    case websocketSession = 4
    case cacheEntry = 5
    case custom = 6

    /// The name used in cleanup request bodies (`"WebsocketSession"`), as in
    /// the original product's cleanup contract (docs/original-product.md).
    public var cleanupName: String {
        switch self {
        case .unknown: "Unknown"
        case .databaseRow: "DatabaseRow"
        case .blobStorage: "BlobStorage"
        case .temporaryFile: "TemporaryFile"
        case .websocketSession: "WebsocketSession"
        case .cacheEntry: "CacheEntry"
        case .custom: "Custom"
        }
    }

    /// The wire enum's name (`"WEBSOCKET_SESSION"`), used in metrics labels.
    public var wireName: String {
        switch self {
        case .unknown: "UNKNOWN"
        case .databaseRow: "DATABASE_ROW"
        case .blobStorage: "BLOB_STORAGE"
        case .temporaryFile: "TEMPORARY_FILE"
        case .websocketSession: "WEBSOCKET_SESSION"
        case .cacheEntry: "CACHE_ENTRY"
        case .custom: "CUSTOM"
        }
    }

    public static func < (lhs: ObjectType, rhs: ObjectType) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
