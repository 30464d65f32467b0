/// The on-disk schema of ``SQLiteRaftStorage``, versioned with `PRAGMA user_version`.
enum StorageSchema {
    /// The version this code writes and reads.
    static let currentVersion: Int64 = 2

    /// DDL of version 1.
    ///
    /// - `log_entries`: one row per entry after the snapshot; `crc` covers index|term|kind|data.
    /// - `hard_state`: at most one row (`id = 1`); `crc` covers term|vote|commit.
    /// - `snapshot`: at most one row (`id = 1`); membership stored as sorted little-endian
    ///   `UInt64` blobs; `crc` covers index|term|voters|learners|data.
    ///
    /// Indices, terms and node ids are `UInt64` stored by bit pattern in SQLite's signed
    /// 64-bit integers; log indices are restricted to `0...Int64.max` so they sort correctly.
    static let version1 = """
        CREATE TABLE log_entries (
            idx  INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            data BLOB    NOT NULL,
            crc  INTEGER NOT NULL
        );
        CREATE TABLE hard_state (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            term   INTEGER NOT NULL,
            vote   INTEGER NOT NULL,
            commit_index INTEGER NOT NULL,
            crc    INTEGER NOT NULL
        );
        CREATE TABLE snapshot (
            id       INTEGER PRIMARY KEY CHECK (id = 1),
            idx      INTEGER NOT NULL,
            term     INTEGER NOT NULL,
            voters   BLOB    NOT NULL,
            learners BLOB    NOT NULL,
            data     BLOB    NOT NULL,
            crc      INTEGER NOT NULL
        );
        PRAGMA user_version = 1;
        """

    /// Version 2: a snapshot row may record a snapshot *file* (``SnapshotFiles``) instead of
    /// holding the bytes. `in_file = 0`: `data` is the snapshot (as in version 1); `in_file = 1`:
    /// `data` is a ``SnapshotFileReference`` (size, CRC-32, file name), still covered by `crc`.
    /// Version-1 databases are upgraded in place (their rows keep `in_file = 0`).
    static let version2 = """
        ALTER TABLE snapshot ADD COLUMN in_file INTEGER NOT NULL DEFAULT 0;
        PRAGMA user_version = 2;
        """

    /// Creates the schema in an empty database, accepts the current version, and refuses
    /// unknown (newer) versions. Runs inside an immediate transaction so two openers cannot
    /// both create it.
    static func migrate(_ db: SQLiteConnection) throws(SchemaError) {
        do {
            try db.begin(.immediate)
        } catch {
            throw .sqlite(error)
        }
        do {
            let version = try db.scalarInt64("PRAGMA user_version") ?? 0
            switch version {
            case 0:
                let tables = try db.scalarInt64("SELECT count(*) FROM sqlite_schema") ?? 0
                guard tables == 0 else {
                    db.rollbackIfNeeded()
                    throw SchemaError.foreignDatabase(tables: tables)
                }
                try db.exec(version1)
                try db.exec(version2)
            case 1:
                try db.exec(version2)
            case currentVersion:
                break
            default:
                db.rollbackIfNeeded()
                throw SchemaError.unsupportedVersion(version)
            }
            try db.commit()
        } catch let error as SchemaError {
            throw error
        } catch let error as SQLiteError {
            db.rollbackIfNeeded()
            throw .sqlite(error)
        } catch {
            db.rollbackIfNeeded()
            throw .sqlite(SQLiteError(code: -1, message: "\(error)", context: "migrate"))
        }
    }

    /// Why a database could not be brought to ``currentVersion``.
    enum SchemaError: Error, CustomStringConvertible {
        case sqlite(SQLiteError)
        case unsupportedVersion(Int64)
        case foreignDatabase(tables: Int64)

        var description: String {
            switch self {
            case .sqlite(let error):
                "schema setup failed: \(error)"
            case .unsupportedVersion(let version):
                "schema version \(version) is not supported (this build reads version \(StorageSchema.currentVersion))"
            case .foreignDatabase(let tables):
                "database has user_version 0 but \(tables) schema objects: not a raft storage database"
            }
        }
    }
}
