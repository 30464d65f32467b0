import Foundation
import Raft
import RaftSQLite
import Testing

/// Runs `body` with a fresh temporary directory that is removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("raft-sqlite-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The database path inside a test directory.
func databasePath(in directory: URL) -> String {
    directory.appendingPathComponent("raft.sqlite").path
}

/// Entries `range` with term `term` and recognizable data.
func makeEntries(_ range: ClosedRange<UInt64>, term: UInt64, tag: String = "") -> [Entry] {
    range.map { index in
        Entry(term: term, index: index, kind: .normal, data: Array("\(tag)entry-\(index)-term-\(term)".utf8))
    }
}

/// Opens a storage with a zero busy timeout (lock conflicts in tests fail at once).
func openStorage(_ path: String, synchronous: SQLiteRaftStorageOptions.Synchronous = .full) throws -> SQLiteRaftStorage {
    try SQLiteRaftStorage(path: path, options: SQLiteRaftStorageOptions(synchronous: synchronous, busyTimeoutMilliseconds: 0))
}

extension RaftStorageError {
    var isCorrupted: Bool { if case .corrupted = self { true } else { false } }
    var isWriteFailed: Bool { if case .writeFailed = self { true } else { false } }
    var isUnavailable: Bool { if case .unavailable = self { true } else { false } }
    var message: String {
        switch self {
        case .corrupted(let text), .writeFailed(let text), .unavailable(let text): text
        }
    }
}

/// Calls `body`, expecting it to throw a `RaftStorageError`, and returns that error (nil if it
/// did not throw).
func storageError(_ body: () throws -> Void) -> RaftStorageError? {
    do {
        try body()
        return nil
    } catch let error as RaftStorageError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}
