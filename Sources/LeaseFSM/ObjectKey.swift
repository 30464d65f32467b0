/// An object that leases refer to: its type and its id. Two leases refer to
/// the same object exactly when their keys are equal.
///
/// An id of up to ``inlineCapacity`` ASCII bytes (most row keys, cache keys,
/// session and file names) is held inside the key, with no heap storage:
/// every lease and the object index hold a key, and as a heap string each
/// id cost its own allocation, interleaved with the log's short-lived ones
/// (at 100,000 leases with 20-byte ids, about 10 MiB of RSS per node). Any
/// other id is kept as written, in a box. Either way a key equals, hashes
/// and sorts exactly as its `(type, id)` does.
public struct ObjectKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Longest id (in UTF-8 bytes, all ASCII) held inline.
    public static let inlineCapacity = 30

    private enum Storage: Sendable {
        case inline(InlineID)
        case text(Text)
    }

    /// Up to 30 ASCII bytes, zero-padded, and one byte packing the count
    /// (low 5 bits) with the type (high 3 bits): 31 bytes, so that the key
    /// with its case tag is 32.
    private struct InlineID: Equatable, Sendable {
        var b0: UInt64 = 0, b8: UInt64 = 0, b16: UInt64 = 0
        var b24: UInt32 = 0, b28: UInt16 = 0
        var packed: UInt8 = 0

        var count: Int { Int(packed & 0x1F) }
        var type: ObjectType { ObjectType(rawValue: Int32(packed >> 5)) ?? .unknown }

        /// The key of `type` and `utf8`, or nil when `utf8` is too long or not all ASCII.
        init?(type: ObjectType, utf8: UnsafeBufferPointer<UInt8>) {
            guard utf8.count <= ObjectKey.inlineCapacity, (0...7).contains(type.rawValue),
                  utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
            packed = UInt8(utf8.count) | UInt8(type.rawValue) << 5
            withUnsafeMutableBytes(of: &self) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(utf8))
            }
        }

        func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
            var copy = self
            return try withUnsafeBytes(of: &copy) { raw in
                try raw.withMemoryRebound(to: UInt8.self) { try body(UnsafeBufferPointer(rebasing: $0[..<count])) }
            }
        }

        var string: String { withUTF8 { String(decoding: $0, as: UTF8.self) } }
    }

    private final class Text: Sendable {
        let type: ObjectType
        let id: String
        init(_ type: ObjectType, _ id: String) {
            self.type = type
            self.id = id
        }
    }

    private var storage: Storage

    public init(type: ObjectType, id: String) {
        var id = id
        storage = id.withUTF8 { InlineID(type: type, utf8: $0) }.map(Storage.inline) ?? .text(Text(type, id))
    }

    /// The key of `type` and the id whose UTF-8 bytes these are (a
    /// snapshot's record): an inline id is read without building a string.
    public init(type: ObjectType, utf8: UnsafeBufferPointer<UInt8>) {
        storage = InlineID(type: type, utf8: utf8).map(Storage.inline)
            ?? .text(Text(type, String(decoding: utf8, as: UTF8.self)))
    }

    public var type: ObjectType {
        get {
            switch storage {
            case .inline(let inline): inline.type
            case .text(let text): text.type
            }
        }
        set { self = ObjectKey(type: newValue, id: id) }
    }

    public var id: String {
        get {
            switch storage {
            case .inline(let inline): inline.string
            case .text(let text): text.id
            }
        }
        set { self = ObjectKey(type: type, id: newValue) }
    }

    /// Calls `body` with the UTF-8 bytes of ``id``, without building a
    /// string for an inline id.
    public func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        switch storage {
        case .inline(let inline):
            return try inline.withUTF8(body)
        case .text(let text):
            var id = text.id
            return try id.withUTF8(body)
        }
    }

    /// Heap bytes this key holds beyond its inline 32: none for an inline id;
    /// else its box (a 16-byte object header, the type and the string) and
    /// the string's own storage.
    public var heapBytes: Int {
        switch storage {
        case .inline: 0
        case .text(let text): 48 + HeapSize.of(text.id)
        }
    }

    public static func == (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.inline(let l), .inline(let r)):
            // ASCII strings are equal exactly when their bytes are.
            return l == r
        case (.text(let l), .text(let r)):
            return l === r || (l.type == r.type && l.id == r.id)
        default:
            // A non-ASCII id can still equal an ASCII one (U+037E is
            // canonically ";"): compare as strings, as before.
            return lhs.type == rhs.type && lhs.id == rhs.id
        }
    }

    public func hash(into hasher: inout Hasher) {
        // As the string hashes, whatever the storage, so that keys equal
        // across the two forms hash alike.
        hasher.combine(type)
        hasher.combine(id)
    }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        if case .inline(let l) = lhs.storage, case .inline(let r) = rhs.storage {
            if l.type != r.type { return l.type < r.type }
            // ASCII strings sort as their bytes do.
            return l.withUTF8 { lb in r.withUTF8 { rb in lb.lexicographicallyPrecedes(rb) } }
        }
        return (lhs.type, lhs.id) < (rhs.type, rhs.id)
    }

    public var description: String { "\(type.wireName)/\(id)" }
}
