import ArgumentParser
import GCProto

/// Object types as spelled on the command line.
enum ObjectTypeArgument: String, ExpressibleByArgument, CaseIterable {
    case databaseRow = "database-row"
    case blobStorage = "blob-storage"
    case temporaryFile = "temporary-file"
    case websocketSession = "websocket-session"
    case cacheEntry = "cache-entry"
    case custom

    var wire: DistributedGc_ObjectType {
        switch self {
        case .databaseRow: .databaseRow
        case .blobStorage: .blobStorage
        case .temporaryFile: .temporaryFile
        case .websocketSession: .websocketSession
        case .cacheEntry: .cacheEntry
        case .custom: .custom
        }
    }
}

/// Lease states as spelled on the command line.
enum LeaseStateArgument: String, ExpressibleByArgument, CaseIterable {
    case active
    case expired
    case released

    var wire: DistributedGc_LeaseState {
        switch self {
        case .active: .active
        case .expired: .expired
        case .released: .released
        }
    }
}
