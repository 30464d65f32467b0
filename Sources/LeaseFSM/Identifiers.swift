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
public struct LeaseID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    /// The id of the lease created by the command at `index` with `suffix`.
    public init(index: UInt64, suffix: String) {
        let hex = String(index, radix: 16)
        self.rawValue = String(repeating: "0", count: max(0, 16 - hex.count)) + hex + "-" + suffix
    }

    public static func < (lhs: LeaseID, rhs: LeaseID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    public var description: String { rawValue }
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

/// An object that leases refer to: its type and its id. Two leases refer to
/// the same object exactly when their keys are equal.
public struct ObjectKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var type: ObjectType
    public var id: String

    public init(type: ObjectType, id: String) {
        self.type = type
        self.id = id
    }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.type, lhs.id) < (rhs.type, rhs.id)
    }

    public var description: String { "\(type.wireName)/\(id)" }
}
