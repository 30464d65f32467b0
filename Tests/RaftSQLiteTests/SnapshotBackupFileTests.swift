import Foundation
import Raft
import RaftSQLite
import Testing

/// The file `gcctl snapshot save` writes and `gc-sidecar restore` reads.
@Suite("Snapshot backup files")
struct SnapshotBackupFileTests {
    @Test("a written file reads back equal, in the layout of the node's own snapshot files, and replaces an older one")
    func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("backup.snap").path
            try SnapshotBackupFile(index: 3, data: [9, 9]).write(to: path)
            let file = SnapshotBackupFile(index: 42, data: Array(0..<200).map { UInt8($0) })
            try file.write(to: path)
            let read = try SnapshotBackupFile.read(from: path)
            #expect(read == file)
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(Array(bytes.prefix(8)) == Array("GCSNAP01".utf8))
            #expect(UInt64(bytes.count) == file.fileSize)
            #expect(file.checksumText.hasPrefix("crc32:") && file.checksumText.count == 14)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["backup.snap"], "no temporary file left")
        }
    }

    @Test("a flipped byte, a truncated file, trailing bytes and a foreign file are refused")
    func damageIsRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("backup.snap").path
            try SnapshotBackupFile(index: 7, data: Array(repeating: 1, count: 100)).write(to: path)
            let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            func check(_ bytes: [UInt8], _ expected: String) throws {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let error = storageError { _ = try SnapshotBackupFile.read(from: path) }
                let message = error.map(SnapshotBackupFile.describe) ?? "accepted"
                #expect(message.contains(expected), "\(message)")
            }
            var flipped = good
            flipped[60] ^= 0x01
            try check(flipped, "checksum")
            try check(Array(good.dropLast(10)), "truncated")
            try check(good + [0], "trailing")
            try check(Array("not a snapshot at all, just text".utf8), "GCSNAP01")
        }
    }
}
