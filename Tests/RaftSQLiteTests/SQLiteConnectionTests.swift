import Foundation
import RaftSQLite
import Testing

@Suite struct SQLiteConnectionTests {
    @Test func bindStepColumnRoundTrip() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteConnection(path: databasePath(in: directory))
            try db.exec("CREATE TABLE t (i INTEGER, b BLOB, s TEXT)")
            try db.transaction(.immediate) { () throws(SQLiteError) in
                let insert = try db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)")
                try insert.bind(Int64.min, at: 1)
                try insert.bind(blob: [0, 1, 255], at: 2)
                try insert.bind(text: "héllo", at: 3)
                try insert.run()
                insert.reset()
                try insert.bind(42, at: 1)
                try insert.bind(blob: [], at: 2)
                try insert.bindNull(at: 3)
                try insert.run()
            }
            let select = try db.prepare("SELECT i, b, s FROM t ORDER BY rowid")
            #expect(try select.step())
            #expect(select.int64(at: 0) == Int64.min)
            #expect(select.blob(at: 1) == [0, 1, 255])
            #expect(select.text(at: 2) == "héllo")
            #expect(try select.step())
            #expect(select.int64(at: 0) == 42)
            #expect(select.columnType(at: 1) == .blob)
            #expect(select.blob(at: 1) == [])
            #expect(select.columnType(at: 2) == .null)
            #expect(try select.step() == false)
        }
    }

    @Test func errorsCarryCodeAndMessage() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteConnection(path: databasePath(in: directory))
            do {
                try db.exec("SELECT * FROM missing_table")
                Issue.record("expected an error")
            } catch let error as SQLiteError {
                #expect(error.primaryCode == 1) // SQLITE_ERROR
                #expect(error.message.contains("missing_table"))
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func failedTransactionRollsBack() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteConnection(path: databasePath(in: directory))
            try db.exec("CREATE TABLE t (i INTEGER PRIMARY KEY)")
            #expect(throws: SQLiteError.self) {
                try db.transaction { () throws(SQLiteError) in
                    try db.exec("INSERT INTO t VALUES (1)")
                    try db.exec("INSERT INTO t VALUES (1)") // constraint violation
                }
            }
            #expect(!db.isInTransaction)
            #expect(try db.scalarInt64("SELECT count(*) FROM t") == 0)
        }
    }

    @Test func closedConnectionThrowsMisuse() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteConnection(path: databasePath(in: directory))
            let statement = try db.prepare("SELECT 1")
            db.close()
            #expect(throws: SQLiteError.self) { try statement.step() }
            #expect(throws: SQLiteError.self) { try db.exec("SELECT 1") }
        }
    }
}
