/// Log compaction and InstallSnapshot (Raft §7, dissertation chapter 5).
extension RaftNode {
    /// Compacts the in-memory log up to `index`, which the application has applied, replacing the
    /// prefix with the application's snapshot `data` (Raft §7).
    ///
    /// Returns the complete snapshot (the core fills in the term and the membership as of
    /// `index`); the driver then calls ``RaftStorage/compact(to:)`` with it. The leader sends this
    /// snapshot to followers whose next entry has been compacted away.
    @discardableResult
    public mutating func compact(appliedIndex index: UInt64, data: [UInt8]) throws(RaftError) -> Snapshot {
        guard index <= log.applied else {
            throw .invalidCompaction("index \(index) is not applied yet (applied \(log.applied))")
        }
        guard index > log.snapshotIndex else {
            throw .invalidCompaction("index \(index) is already compacted (snapshot at \(log.snapshotIndex))")
        }
        guard let entryTerm = log.term(at: index) else {
            throw .invalidCompaction("index \(index) is not in the log")
        }
        let snapshot = Snapshot(
            metadata: SnapshotMetadata(index: index, term: entryTerm, conf: log.conf(at: index)),
            data: data
        )
        log.compact(to: index)
        latestSnapshot = snapshot
        latestSnapshotSource = nil
        return snapshot
    }

    /// Forgets the bytes of the latest snapshot, keeping its metadata, once `source` can read
    /// them back from durable storage (the snapshot file the driver just recorded). Otherwise
    /// every node would hold a copy of the whole state as bytes for as long as no follower
    /// needs it: about a quarter of a gigabyte with a million leases. When a follower needs
    /// the snapshot, ``sendSnapshot(to:)`` reads it back with `source`; if that fails, nothing
    /// is sent and the follower is tried again on a later append. A later ``compact(appliedIndex:data:)``
    /// or installed snapshot replaces both.
    public mutating func releaseSnapshotData(readBackWith source: @escaping @Sendable () -> [UInt8]?) {
        guard var snapshot = latestSnapshot else { return }
        snapshot.data = []
        latestSnapshot = snapshot
        latestSnapshotSource = source
    }

    /// Starts an InstallSnapshot transfer to `peer`: the whole snapshot is sent as chunks of
    /// `snapshotChunkSize` bytes; the follower reassembles them and answers once, when it has
    /// installed the snapshot.
    /// If no answer comes within `2 * electionTick` ticks the leader falls back to probing, which
    /// leads to a new transfer.
    mutating func sendSnapshot(to peer: NodeID) -> Bool {
        guard let snapshot = latestSnapshot, snapshot.metadata.index == log.snapshotIndex else {
            preconditionFailure("log compacted to \(log.snapshotIndex) without a matching snapshot")
        }
        guard progress[peer]?.recentActive == true else {
            // Do not push a large snapshot at a peer we have not heard from lately; wait for it
            // to answer a heartbeat first.
            return false
        }
        var data = snapshot.data
        if let source = latestSnapshotSource {
            // Released: read back from storage (a failure is retried on a later append).
            guard let stored = source() else { return false }
            data = stored
        }
        progress[peer]?.becomeSnapshot(snapshot.metadata.index)
        let total = data.count
        let chunkSize = config.snapshotChunkSize
        var offset = 0
        repeat {
            let end = min(offset + chunkSize, total)
            send(Message(
                type: .snapshot, from: id, to: peer, term: term,
                snapshot: SnapshotChunk(
                    metadata: snapshot.metadata,
                    offset: UInt64(offset),
                    totalSize: UInt64(total),
                    data: Array(data[offset..<end])
                )
            ))
            offset = end
        } while offset < total
        return true
    }

    /// Follower side of InstallSnapshot: collect the chunks of one transfer (in any order,
    /// duplicates ignored; a chunk of another snapshot, term or sender starts over), then install.
    mutating func handleSnapshotChunk(_ m: Message) {
        guard let chunk = m.snapshot else { return }
        if snapshotReceiver?.belongs(chunk, term: m.term, from: m.from) != true {
            snapshotReceiver = SnapshotReceiver(term: m.term, from: m.from, chunk: chunk)
        }
        guard snapshotReceiver?.add(chunk) == true else {
            // Admission refuses such chunks; this only guards the receiver's bound.
            refuse(m, .malformedSnapshot, "chunk at offset \(chunk.offset) does not fit a snapshot of \(chunk.totalSize) bytes")
            return
        }
        guard let data = snapshotReceiver?.assembled(), let metadata = snapshotReceiver?.metadata else { return }
        snapshotReceiver = nil
        installSnapshot(Snapshot(metadata: metadata, data: data), from: m.from)
    }

    /// Raft figure 13, receiver steps 6-8: if the log already holds the snapshot's last entry,
    /// keep it (only advance the commit index); otherwise discard the whole log and adopt the
    /// snapshot, including its membership.
    mutating func installSnapshot(_ snapshot: Snapshot, from leader: NodeID) {
        let meta = snapshot.metadata
        if meta.index <= log.committed {
            send(Message(type: .appendResponse, from: id, to: leader, term: term, index: log.committed))
            return
        }
        if log.matchTerm(meta.index, meta.term) {
            log.commit(to: meta.index)
            send(Message(type: .appendResponse, from: id, to: leader, term: term, index: log.committed))
            return
        }
        guard log.restore(meta) else {
            // Unreachable: a snapshot at or below the commit index was answered above.
            send(Message(type: .appendResponse, from: id, to: leader, term: term, index: log.committed))
            return
        }
        latestSnapshot = snapshot
        latestSnapshotSource = nil
        receivedSnapshot = snapshot
        send(Message(type: .appendResponse, from: id, to: leader, term: term, index: log.lastIndex))
    }
}
