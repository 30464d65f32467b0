#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Raft

/// A snapshot file outside a data directory: what `gcctl snapshot save` writes and
/// `gc-sidecar restore` reads.
///
/// It has exactly the layout of the files in `<database>.snapshots/` (see ``SnapshotFiles``):
/// the magic `GCSNAP01`, the index and the data size (little-endian `UInt64`s), the data (the
/// lease state machine's snapshot encoding), then the data's CRC-32. A backup is therefore a
/// snapshot file a node could have written itself, read and checked by the same code.
public struct SnapshotBackupFile: Sendable, Hashable {
    /// The log index the state covers.
    public var index: UInt64
    /// The encoded state (``SnapshotFiles`` data).
    public var data: [UInt8]
    /// CRC-32 of `data`, as stored in the file.
    public var checksum: UInt32

    public init(index: UInt64, data: [UInt8]) {
        self.index = index
        self.data = data
        self.checksum = CRC32.checksum(data)
    }

    /// Bytes of the whole file (header, data, checksum).
    public var fileSize: UInt64 { UInt64(SnapshotFiles.headerSize + data.count + 4) }

    /// The checksum as operators see it: `crc32:` and eight hex digits.
    public var checksumText: String { Self.checksumText(checksum) }

    /// `crc32:` and the eight hex digits of `value`.
    public static func checksumText(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "crc32:" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The message of a ``RaftStorageError`` thrown by ``read(from:)`` or ``write(to:)``, for people.
    public static func describe(_ error: RaftStorageError) -> String {
        switch error {
        case .writeFailed(let message), .corrupted(let message), .unavailable(let message): message
        }
    }

    /// CRC-32 of `bytes` (the checksum this file format uses), for streams that check as they go.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 { CRC32.checksum(bytes) }

    /// Writes the file at `path` atomically: a temporary file beside it is written, fsynced and
    /// renamed over `path`, then the directory is fsynced. On failure `path` is untouched.
    public func write(to path: String) throws(RaftStorageError) {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .writeFailed("\(temporary): open: \(SnapshotFiles.errnoText())") }
        var header = SnapshotFiles.magic
        SnapshotFiles.append(index, to: &header)
        SnapshotFiles.append(UInt64(data.count), to: &header)
        var trailer: [UInt8] = []
        SnapshotFiles.append(checksum, to: &trailer)
        do throws(RaftStorageError) {
            try SnapshotFiles.writeAll(fd, header, temporary)
            try SnapshotFiles.writeAll(fd, data, temporary)
            try SnapshotFiles.writeAll(fd, trailer, temporary)
            guard fsync(fd) == 0 else { throw .writeFailed("\(temporary): fsync: \(SnapshotFiles.errnoText())") }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let text = SnapshotFiles.errnoText()
            unlink(temporary)
            throw .writeFailed("\(path): rename: \(text)")
        }
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        try SnapshotFiles.fsyncDirectory(parent.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : parent)
    }

    /// Reads and verifies the file at `path`: magic, a data size that matches the file's length,
    /// and the CRC-32. Throws ``RaftStorageError/corrupted(_:)`` naming what is wrong.
    public static func read(from path: String) throws(RaftStorageError) -> SnapshotBackupFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unavailable("\(path): cannot be opened: \(SnapshotFiles.errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unavailable("\(path): stat: \(SnapshotFiles.errnoText())") }
        let fileSize = Int(info.st_size)
        guard fileSize >= SnapshotFiles.headerSize + 4 else {
            throw .corrupted("\(path) is not a snapshot file (\(fileSize) bytes, too short for the header)")
        }
        var header = [UInt8](repeating: 0, count: SnapshotFiles.headerSize)
        try SnapshotFiles.readExactly(fd, &header, path)
        guard Array(header[0..<8]) == SnapshotFiles.magic else {
            throw .corrupted("\(path) is not a snapshot file (it does not start with GCSNAP01)")
        }
        let index = SnapshotFiles.uint64(header, at: 8)
        let size = SnapshotFiles.uint64(header, at: 16)
        guard size == UInt64(fileSize - SnapshotFiles.headerSize - 4) else {
            throw .corrupted("\(path) is truncated or has trailing bytes (its header announces \(size) bytes of data, the file holds \(fileSize - SnapshotFiles.headerSize - 4))")
        }
        var data = [UInt8](repeating: 0, count: Int(size))
        try SnapshotFiles.readExactly(fd, &data, path)
        var trailer = [UInt8](repeating: 0, count: 4)
        try SnapshotFiles.readExactly(fd, &trailer, path)
        let stored = UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let file = SnapshotBackupFile(index: index, data: data)
        guard file.checksum == stored else {
            throw .corrupted("\(path) fails its checksum (stored \(checksumText(stored)), computed \(file.checksumText)): the file is damaged")
        }
        return file
    }
}
