import SwiftProtobuf

/// The compact binary snapshot format (format 2), written by
/// ``LeaseStateMachine/snapshot()`` and read by ``LeaseStateMachine/init(snapshot:limits:)``.
///
/// Layout: the magic `00 'G' 'C' 'S'` (a protobuf message cannot start with a zero byte, so a
/// format-1 protobuf snapshot is told apart by its first byte), the format byte, then the
/// header (now, applied index, job sequence, the eight stats counters), then four sections,
/// each a `UInt64` record count followed by the records: leases (by id), objects (each where
/// its oldest active lease comes), jobs (by id), so equal states give equal bytes (readers
/// accept any order), and client sessions (each a length-prefixed
/// `ClientSessionRecord` protobuf: few, and shaped like the command replies they hold).
/// Integers are fixed-width little-endian; strings and byte runs are a `UInt32` length and
/// the UTF-8 bytes; an optional is a `0`/`1` byte and the value. Encoding and decoding are a
/// single pass over flat bytes, with no intermediate message objects.
enum SnapshotCodec {
    static let magic: [UInt8] = [0x00, 0x47, 0x43, 0x53]
    /// The format byte this code writes; readers accept 2 (and protobuf format 1).
    static let format: UInt8 = 2

    /// True if `bytes` start like a format-2 snapshot.
    static func isBinary(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 5 && bytes[0] == magic[0] && bytes[1] == magic[1] && bytes[2] == magic[2] && bytes[3] == magic[3]
    }
}

// MARK: - Writing

struct SnapshotWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func time(_ value: WallTime) { i64(value.milliseconds) }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            u32(UInt32(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A lease id, written as its string is.
    mutating func leaseID(_ id: LeaseID) {
        id.withUTF8 { utf8 in
            u32(UInt32(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func raw(_ value: [UInt8]) {
        u32(UInt32(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    mutating func metadata(_ value: [String: String]) {
        u32(UInt32(truncatingIfNeeded: value.count))
        guard !value.isEmpty else { return }
        for key in value.keys.sorted() {
            string(key)
            string(value[key] ?? "")
        }
    }

    /// An object key: its type, then its id as a string is written.
    mutating func object(_ key: ObjectKey) {
        i32(key.type.rawValue)
        key.withUTF8 { utf8 in
            u32(UInt32(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func spec(_ spec: CleanupSpec) {
        string(spec.httpEndpoint)
        string(spec.grpcEndpoint)
        string(spec.payload)
        u32(spec.maxRetries)
        u64(spec.retryDelaySeconds)
    }

    mutating func lease(_ l: Lease) {
        leaseID(l.id)
        object(l.object)
        string(l.serviceID)
        metadata(l.metadata)
        if let spec = l.cleanup {
            u8(1)
            self.spec(spec)
        } else {
            u8(0)
        }
        time(l.createdAt)
        time(l.expiresAt)
        time(l.lastRenewedAt)
        u64(l.durationSeconds)
        u32(l.renewalCount)
        u64(l.fencingToken)
        u64(l.incarnation)
        i32(l.state.rawValue)
        i64(l.endedAt?.milliseconds ?? 0)
        u64(l.cleanupJobID ?? 0)
        u64(l.createdIndex)
    }

    mutating func job(_ j: CleanupJob) {
        u64(j.id)
        object(j.object)
        u64(j.incarnation)
        leaseID(j.leaseID)
        string(j.serviceID)
        metadata(j.metadata)
        spec(j.spec)
        u64(j.fencingToken)
        u32(j.attempts)
        time(j.nextAttemptAt)
        i32(j.state.rawValue)
        string(j.lastError)
        time(j.createdAt)
        i64(j.finishedAt?.milliseconds ?? 0)
    }
}

// MARK: - Reading

extension [UInt8] {
    /// Calls `body` with a ``SnapshotReader`` over these bytes, starting at `position`.
    func withSnapshotReader<R>(
        at position: Int, _ body: (inout SnapshotReader) throws(LeaseStateMachine.DecodingError) -> R
    ) throws(LeaseStateMachine.DecodingError) -> R {
        let result = withUnsafeBytes { buffer -> Result<R, LeaseStateMachine.DecodingError> in
            var reader = SnapshotReader(buffer, position: position)
            return Result { () throws(LeaseStateMachine.DecodingError) in try body(&reader) }
        }
        return try result.get()
    }
}

/// What a format-2 snapshot starts with after its magic: the format byte, the clock, the
/// applied index, the job sequence and the counters.
struct SnapshotHeader {
    var now: WallTime
    var appliedIndex: UInt64
    var jobSequence: UInt64
    var stats = LeaseStats()

    init(_ r: inout SnapshotReader) throws(LeaseStateMachine.DecodingError) {
        let format = try r.u8()
        guard format == SnapshotCodec.format else {
            throw LeaseStateMachine.DecodingError(message: "snapshot format \(format) is not supported (this build reads 1...\(SnapshotCodec.format))")
        }
        now = try r.time()
        appliedIndex = try r.u64()
        jobSequence = try r.u64()
        stats.created = try r.u64()
        stats.renewed = try r.u64()
        stats.expired = try r.u64()
        stats.released = try r.u64()
        stats.cleanupAttempts = try r.u64()
        stats.cleanupFailures = try r.u64()
        stats.cleanupSucceeded = try r.u64()
        stats.deadLettered = try r.u64()
    }
}

/// Reads a format-2 snapshot; every read is bounds-checked and fails with
/// ``LeaseStateMachine/DecodingError`` on truncated or malformed input.
struct SnapshotReader {
    let buffer: UnsafeRawBufferPointer
    var position: Int

    init(_ buffer: UnsafeRawBufferPointer, position: Int) {
        self.buffer = buffer
        self.position = position
    }

    var remaining: Int { buffer.count - position }

    private func truncated(_ what: StaticString) -> LeaseStateMachine.DecodingError {
        LeaseStateMachine.DecodingError(message: "snapshot truncated reading \(what) at byte \(position)")
    }

    mutating func u8() throws(LeaseStateMachine.DecodingError) -> UInt8 {
        guard remaining >= 1 else { throw truncated("a byte") }
        defer { position += 1 }
        return buffer[position]
    }

    mutating func u32() throws(LeaseStateMachine.DecodingError) -> UInt32 {
        guard remaining >= 4 else { throw truncated("a 32-bit integer") }
        defer { position += 4 }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64() throws(LeaseStateMachine.DecodingError) -> UInt64 {
        guard remaining >= 8 else { throw truncated("a 64-bit integer") }
        defer { position += 8 }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func i64() throws(LeaseStateMachine.DecodingError) -> Int64 { Int64(bitPattern: try u64()) }
    mutating func i32() throws(LeaseStateMachine.DecodingError) -> Int32 { Int32(bitPattern: try u32()) }
    mutating func time() throws(LeaseStateMachine.DecodingError) -> WallTime { WallTime(milliseconds: try i64()) }

    /// A record count, refused if the rest of the input could not hold that many records of
    /// at least `minimumSize` bytes (so garbage never reserves gigabytes).
    mutating func count(minimumSize: Int) throws(LeaseStateMachine.DecodingError) -> Int {
        let value = try u64()
        guard value <= UInt64(remaining / max(1, minimumSize)) else {
            throw LeaseStateMachine.DecodingError(message: "snapshot record count \(value) exceeds what \(remaining) remaining bytes can hold")
        }
        return Int(value)
    }

    private mutating func length() throws(LeaseStateMachine.DecodingError) -> Int {
        let length = Int(try u32())
        guard length <= remaining else { throw truncated("a string or byte run") }
        return length
    }

    mutating func string() throws(LeaseStateMachine.DecodingError) -> String {
        let length = try length()
        defer { position += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[position..<(position + length)]), as: UTF8.self)
    }

    /// A lease id written by ``SnapshotWriter/leaseID(_:)``.
    mutating func leaseID() throws(LeaseStateMachine.DecodingError) -> LeaseID {
        let length = try length()
        defer { position += length }
        return LeaseID(utf8: UnsafeRawBufferPointer(rebasing: buffer[position..<(position + length)]))
    }

    /// Moves past `count` bytes.
    mutating func skip(_ count: Int) throws(LeaseStateMachine.DecodingError) {
        guard remaining >= count else { throw truncated("a record") }
        position += count
    }

    /// Moves past a string (or byte run) without building it.
    mutating func skipString() throws(LeaseStateMachine.DecodingError) {
        position += try length()
    }

    /// Moves past one lease record, reading only lengths and flags: where ``lease()`` would
    /// stop, at a fraction of its cost (``LeaseStateMachine/init(binarySnapshot:limits:)``
    /// uses it to find where the leases end). Must follow ``SnapshotWriter/lease(_:)``.
    mutating func skipLease() throws(LeaseStateMachine.DecodingError) {
        try skipString()  // id
        try skip(4)  // object type
        try skipString()  // object id
        try skipString()  // service id
        let metadataCount = Int(try u32())
        guard metadataCount <= remaining / 8 else { throw truncated("metadata") }
        for _ in 0..<(2 * metadataCount) { try skipString() }
        if try flag() {
            for _ in 0..<3 { try skipString() }  // endpoints and payload
            try skip(4 + 8)  // max retries, retry delay
        }
        // created, expires, last renewed, duration, renewal count, fencing token,
        // incarnation, state, ended, cleanup job, created index
        try skip(8 + 8 + 8 + 8 + 4 + 8 + 8 + 4 + 8 + 8 + 8)
    }

    mutating func raw() throws(LeaseStateMachine.DecodingError) -> [UInt8] {
        let length = try length()
        defer { position += length }
        return Array(buffer[position..<(position + length)])
    }

    mutating func flag() throws(LeaseStateMachine.DecodingError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw LeaseStateMachine.DecodingError(message: "snapshot has flag byte \(other) at byte \(position - 1)")
        }
    }

    mutating func metadata() throws(LeaseStateMachine.DecodingError) -> [String: String] {
        let count = Int(try u32())
        guard count > 0 else { return [:] }
        guard count <= remaining / 8 else { throw truncated("metadata") }
        var result: [String: String] = [:]
        result.reserveCapacity(count)
        for _ in 0..<count {
            let key = try string()
            result[key] = try string()
        }
        return result
    }

    mutating func object() throws(LeaseStateMachine.DecodingError) -> ObjectKey {
        let raw = try i32()
        guard let type = ObjectType(rawValue: raw) else {
            throw LeaseStateMachine.DecodingError(message: "unknown object type \(raw)")
        }
        let length = try length()
        defer { position += length }
        return UnsafeRawBufferPointer(rebasing: buffer[position..<(position + length)]).withMemoryRebound(to: UInt8.self) {
            ObjectKey(type: type, utf8: $0)
        }
    }

    mutating func spec() throws(LeaseStateMachine.DecodingError) -> CleanupSpec {
        CleanupSpec(httpEndpoint: try string(), grpcEndpoint: try string(), payload: try string(),
                    maxRetries: try u32(), retryDelaySeconds: try u64())
    }

    mutating func lease() throws(LeaseStateMachine.DecodingError) -> Lease {
        let id = try leaseID()
        let object = try object()
        let serviceID = try string()
        let metadata = try metadata()
        let cleanup: CleanupSpec? = try flag() ? try spec() : nil
        let createdAt = try time()
        let expiresAt = try time()
        let lastRenewedAt = try time()
        let durationSeconds = try u64()
        let renewalCount = try u32()
        let fencingToken = try u64()
        let incarnation = try u64()
        let rawState = try i32()
        guard let state = Lease.State(rawValue: rawState) else {
            throw LeaseStateMachine.DecodingError(message: "lease \(id) has unknown state \(rawState)")
        }
        let endedAt = try i64()
        let cleanupJobID = try u64()
        let createdIndex = try u64()
        return Lease(
            id: id, object: object, serviceID: serviceID, metadata: metadata, cleanup: cleanup,
            createdAt: createdAt, expiresAt: expiresAt, lastRenewedAt: lastRenewedAt,
            durationSeconds: durationSeconds, renewalCount: renewalCount, fencingToken: fencingToken,
            incarnation: incarnation, state: state,
            endedAt: state == .active ? nil : WallTime(milliseconds: endedAt),
            cleanupJobID: cleanupJobID == 0 ? nil : cleanupJobID, createdIndex: createdIndex)
    }

    mutating func job() throws(LeaseStateMachine.DecodingError) -> CleanupJob {
        let id = try u64()
        let object = try object()
        let incarnation = try u64()
        let leaseID = try leaseID()
        let serviceID = try string()
        let metadata = try metadata()
        let spec = try spec()
        let fencingToken = try u64()
        let attempts = try u32()
        let nextAttemptAt = try time()
        let rawState = try i32()
        guard let state = CleanupJob.State(rawValue: rawState) else {
            throw LeaseStateMachine.DecodingError(message: "job \(id) has unknown state \(rawState)")
        }
        let lastError = try string()
        let createdAt = try time()
        let finishedAt = try i64()
        return CleanupJob(
            id: id, object: object, incarnation: incarnation, leaseID: leaseID, serviceID: serviceID,
            metadata: metadata, spec: spec, fencingToken: fencingToken, attempts: attempts,
            nextAttemptAt: nextAttemptAt, state: state, lastError: lastError, createdAt: createdAt,
            finishedAt: (state == .succeeded || state == .superseded) ? WallTime(milliseconds: finishedAt) : nil)
    }
}
