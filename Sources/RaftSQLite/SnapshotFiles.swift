#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Raft

/// POSIX `read` (a member named `read` would shadow it inside ``SnapshotFiles``).
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// The snapshot files of one ``SQLiteRaftStorage``: a directory next to the database
/// (`<database>.snapshots/`) holding at most one recorded snapshot file plus, transiently, the
/// one being staged.
///
/// A file is `snapshot-<index>.snap`: the 8-byte magic `GCSNAP01`, the index and the data size
/// (little-endian `UInt64`s), the data, then its CRC-32 (little-endian `UInt32`). It is written
/// under a temporary name, fsynced, renamed into place and the directory fsynced, so a file
/// with the final name is always complete. The database row that records it (see
/// ``StorageSchema``) names it and repeats size and checksum; a file no row names is garbage
/// from a crash and is removed when the storage opens.
///
/// `Sendable` because it holds only a path: staging runs on any task while the storage's
/// driver keeps using the database.
public struct SnapshotFiles: SnapshotStager {
    /// The directory holding the files.
    public let directory: String

    static let magic: [UInt8] = Array("GCSNAP01".utf8)
    static let headerSize = 24
    static let chunkSize = 1 << 20
    /// Bytes of a snapshot file written between two `fdatasync`s while it is staged.
    static let flushEvery = 16 << 20

    /// Starts writing `count` bytes at `offset` to disk without waiting for them (Linux:
    /// `POSIX_FADV_DONTNEED` starts writeback of the range's dirty pages, and drops those
    /// already clean from the page cache). Best effort.
    static func startWriteback(_ fd: Int32, from offset: Int, count: Int) {
        #if os(Linux)
        _ = posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_DONTNEED)
        #endif
    }

    /// Files for the database at `databasePath`.
    init(databasePath: String) {
        directory = databasePath + ".snapshots"
    }

    /// The final name of the file holding the snapshot at `index`.
    public static func name(index: UInt64) -> String {
        let digits = String(index)
        return "snapshot-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".snap"
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// Creates the directory (and makes its entry durable) if it does not exist.
    func createDirectory() throws(RaftStorageError) {
        if mkdir(directory, 0o755) != 0 {
            guard errno == EEXIST else {
                throw .unavailable("cannot create snapshot directory \(directory): \(Self.errnoText())")
            }
            return
        }
        let parent = directory.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        try Self.fsyncDirectory(parent.isEmpty ? (directory.hasPrefix("/") ? "/" : ".") : parent)
    }

    // MARK: SnapshotStager

    /// Writes `data` to `snapshot-<index>.snap` via a temporary file: write, fsync, rename,
    /// fsync the directory.
    public func stage(index: UInt64, data: [UInt8]) throws(RaftStorageError) -> StagedSnapshot {
        let name = Self.name(index: index)
        let temporary = path(name + ".tmp")
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .writeFailed("snapshot file \(temporary): open: \(Self.errnoText())")
        }
        var crc = CRC32()
        crc.update(data)
        let checksum = crc.value
        var header = Self.magic
        Self.append(UInt64(index), to: &header)
        Self.append(UInt64(data.count), to: &header)
        var trailer: [UInt8] = []
        Self.append(checksum, to: &trailer)
        do throws(RaftStorageError) {
            try Self.writeAll(fd, header, temporary)
            // In chunks, each handed to the disk as soon as it is written, and flushed every
            // ``flushEvery`` bytes: the Raft log's fsyncs share the disk (and, on ext4, the
            // journal) with this file, and one fsync of hundreds of dirty megabytes at the
            // end held them for a hundred milliseconds and more.
            let failed = data.withUnsafeBytes { bytes -> Bool in
                var offset = 0
                var unflushed = 0
                while offset < bytes.count {
                    let end = min(offset + Self.chunkSize, bytes.count)
                    guard Self.rawWriteAll(fd, UnsafeRawBufferPointer(rebasing: bytes[offset..<end])) else { return true }
                    Self.startWriteback(fd, from: Self.headerSize + offset, count: end - offset)
                    unflushed += end - offset
                    offset = end
                    if unflushed >= Self.flushEvery {
                        guard fdatasync(fd) == 0 else { return true }
                        unflushed = 0
                    }
                }
                return false
            }
            if failed { throw .writeFailed("snapshot file \(temporary): write: \(Self.errnoText())") }
            try Self.writeAll(fd, trailer, temporary)
            guard fsync(fd) == 0 else {
                throw .writeFailed("snapshot file \(temporary): fsync: \(Self.errnoText())")
            }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path(name)) == 0 else {
            let text = Self.errnoText()
            unlink(temporary)
            throw .writeFailed("snapshot file \(name): rename: \(text)")
        }
        try Self.fsyncDirectory(directory)
        return StagedSnapshot(index: index, name: name, size: UInt64(data.count), checksum: checksum)
    }

    /// Removes the staged file (best effort).
    public func discard(_ staged: StagedSnapshot) {
        discard(named: staged.name)
    }

    public func reader(for staged: StagedSnapshot) -> @Sendable () -> [UInt8]? {
        reader(for: SnapshotFileReference(staged), index: staged.index)
    }

    /// Reads the file `reference` names back, verified by ``read(_:index:)``; nil on any failure.
    func reader(for reference: SnapshotFileReference, index: UInt64) -> @Sendable () -> [UInt8]? {
        { try? self.read(reference, index: index) }
    }

    /// Removes the snapshot file `name` (best effort; a leftover is swept at the next open).
    func discard(named name: String) {
        unlink(path(name))
    }

    /// Suffix of a replaced snapshot file being removed in the background.
    static let retiredSuffix = ".retired"

    /// Removes the replaced snapshot file `name` without making the caller wait: it is renamed
    /// aside at once (so nothing finds it under its name), then shrunk a step at a time and
    /// unlinked on a background task. Unlinking a file of hundreds of megabytes at once took
    /// tens of milliseconds on the store and made the next Raft log fsync wait for the
    /// journal commit that freed its blocks. A file left by a crash meanwhile is swept at the
    /// next open (its name starts with `snapshot-`). Best effort.
    func retire(named name: String) {
        let retired = path(name + Self.retiredSuffix)
        guard rename(path(name), retired) == 0 else {
            unlink(path(name))
            return
        }
        Task.detached(priority: .background) { Self.removeGradually(retired) }
    }

    /// Bytes a retired file shrinks by per step.
    static let shrinkStep = 32 << 20

    /// Truncates `file` from its end in ``shrinkStep``s, then unlinks it.
    static func removeGradually(_ file: String) {
        var info = stat()
        if stat(file, &info) == 0 {
            var size = Int(info.st_size)
            while size > shrinkStep {
                size -= shrinkStep
                guard truncate(file, off_t(size)) == 0 else { break }
            }
        }
        unlink(file)
    }

    // MARK: Reading and cleaning

    /// Reads and verifies the file a snapshot row names: header, index, size and CRC-32 must
    /// match the row's reference.
    func read(_ reference: SnapshotFileReference, index: UInt64) throws(RaftStorageError) -> [UInt8] {
        let file = path(reference.name)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .corrupted("snapshot at index \(index): file \(file) cannot be opened: \(Self.errnoText())")
        }
        defer { close(fd) }
        guard reference.size <= UInt64(Int.max - Self.headerSize - 4) else {
            throw .corrupted("snapshot at index \(index): recorded size \(reference.size) is impossible")
        }
        let size = Int(reference.size)
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        try Self.readExactly(fd, &header, file)
        guard Array(header[0..<8]) == Self.magic,
              Self.uint64(header, at: 8) == index, Self.uint64(header, at: 16) == reference.size else {
            throw .corrupted("snapshot at index \(index): file \(file) has a header that does not match its record")
        }
        // Read into uninitialized storage (no zero-filling of hundreds of MB), checksummed a
        // chunk at a time while the chunk is still in cache.
        var crc = CRC32()
        var got = 0
        let data = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            while got < size {
                let n = posixRead(fd, base + got, min(Self.chunkSize, size - got))
                if n < 0 {
                    if errno == EINTR { continue }
                    got = -1
                    break
                }
                if n == 0 { break }
                crc.update(UnsafeRawBufferPointer(start: base + got, count: n))
                got += n
            }
            initialized = max(got, 0)
        }
        guard got == size else {
            throw .corrupted("snapshot file \(file) is truncated or unreadable (\(got < 0 ? Self.errnoText() : "\(got) of \(size) bytes"))")
        }
        var trailer = [UInt8](repeating: 0, count: 4)
        try Self.readExactly(fd, &trailer, file)
        let stored = UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let computed = crc.value
        guard stored == reference.checksum, computed == reference.checksum else {
            throw .corrupted("snapshot at index \(index): file \(file) fails its checksum (recorded \(reference.checksum), stored \(stored), computed \(computed))")
        }
        return data
    }

    /// Removes every file in the directory except `keep` (leftovers of a crash between staging
    /// and recording, of an interrupted staging, or of a replaced snapshot).
    func removeAll(except keep: String?) {
        guard let dir = opendir(directory) else { return }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("snapshot-"), name != keep { names.append(name) }
        }
        closedir(dir)
        for name in names { unlink(path(name)) }
    }

    // MARK: POSIX helpers

    static func fsyncDirectory(_ directory: String) throws(RaftStorageError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .writeFailed("snapshot directory \(directory): open: \(errnoText())")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw .writeFailed("snapshot directory \(directory): fsync: \(errnoText())")
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ file: String) throws(RaftStorageError) {
        let ok = bytes.withUnsafeBytes { rawWriteAll(fd, $0) }
        guard ok else { throw .writeFailed("snapshot file \(file): write: \(errnoText())") }
    }

    /// Writes all of `bytes`, retrying short writes and EINTR; false (errno set) on failure.
    static func rawWriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    static func readExactly(_ fd: Int32, _ buffer: inout [UInt8], _ file: String) throws(RaftStorageError) {
        let wanted = buffer.count
        let got = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            var offset = 0
            while offset < wanted {
                let n = posixRead(fd, base + offset, wanted - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return -1
                }
                if n == 0 { break }
                offset += n
            }
            return offset
        }
        guard got == wanted else {
            throw .corrupted("snapshot file \(file) is truncated or unreadable (\(got < 0 ? errnoText() : "\(got) of \(wanted) bytes"))")
        }
    }

    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func uint64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << UInt64(8 * $1) }
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

/// What a snapshot row stores in its `data` column when the bytes live in a file
/// (`in_file = 1`): size and CRC-32 of the data (little-endian `UInt64`, `UInt32`), then the
/// file name (UTF-8). The row's own checksum covers it like inline data.
struct SnapshotFileReference: Hashable {
    var name: String
    var size: UInt64
    var checksum: UInt32

    init(_ staged: StagedSnapshot) {
        name = staged.name
        size = staged.size
        checksum = staged.checksum
    }

    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        SnapshotFiles.append(size, to: &bytes)
        SnapshotFiles.append(checksum, to: &bytes)
        bytes.append(contentsOf: Array(name.utf8))
        return bytes
    }

    init?(decoding bytes: [UInt8]) {
        guard bytes.count > 12 else { return nil }
        size = SnapshotFiles.uint64(bytes, at: 0)
        checksum = (8..<12).reduce(UInt32(0)) { $0 | UInt32(bytes[$1]) << UInt32(8 * ($1 - 8)) }
        name = String(decoding: bytes[12...], as: UTF8.self)
        // Only names this code writes: never a path outside the directory.
        guard name.hasPrefix("snapshot-"), name.hasSuffix(".snap"), !name.contains("/") else { return nil }
    }
}
