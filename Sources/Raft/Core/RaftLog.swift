/// The core's in-memory view of the replicated log: the snapshot it starts from, the entries after
/// it, and the bookkeeping of what is committed, handed out for persistence and applied.
///
/// Invariant: `entries[i].index == snapshotIndex + 1 + i`, and
/// `snapshotIndex <= applied <= applying <= committed <= lastIndex`.
///
/// It also tracks membership, which takes effect when a configuration entry is *appended*
/// (dissertation §4.1): the current configuration is that of the last configuration entry in the
/// log, or the snapshot's if there is none. Truncating a configuration entry reverts it.
struct RaftLog: Sendable {
    private(set) var snapshotIndex: UInt64
    private(set) var snapshotTerm: UInt64
    private(set) var entries: [Entry]
    private(set) var committed: UInt64
    /// Highest index handed to the application in a `Ready`.
    var applying: UInt64
    /// Highest index the application reported applied (via `advance`).
    var applied: UInt64
    /// First index not yet handed out in a `Ready` for persistence.
    private(set) var unstableFrom: UInt64
    /// Membership as of `snapshotIndex`.
    private(set) var baseConf: ConfState
    /// Configuration entries after `snapshotIndex`, in index order.
    private(set) var configs: [(index: UInt64, conf: ConfState)]

    init(snapshot: SnapshotMetadata, entries: [Entry], committed: UInt64, bootstrapConf: ConfState) {
        precondition(entries.first.map { $0.index == snapshot.index + 1 } ?? true, "log must start right after the snapshot")
        for (offset, entry) in entries.enumerated() {
            precondition(entry.index == snapshot.index + 1 + UInt64(offset), "log must be contiguous")
        }
        self.snapshotIndex = snapshot.index
        self.snapshotTerm = snapshot.term
        self.entries = entries
        self.baseConf = snapshot.index == 0 ? bootstrapConf : snapshot.conf
        self.configs = []
        let last = snapshot.index + UInt64(entries.count)
        self.committed = max(snapshot.index, min(committed, last))
        self.applying = snapshot.index
        self.applied = snapshot.index
        self.unstableFrom = last + 1
        for entry in entries { noteConfig(entry) }
    }

    var firstIndex: UInt64 { snapshotIndex + 1 }
    var lastIndex: UInt64 { snapshotIndex + UInt64(entries.count) }
    var lastTerm: UInt64 { entries.last?.term ?? snapshotTerm }
    var conf: ConfState { configs.last?.conf ?? baseConf }
    /// Index of the last configuration entry, or `snapshotIndex` if none follows the snapshot.
    var lastConfIndex: UInt64 { configs.last?.index ?? snapshotIndex }

    /// Term of the entry at `index`, or nil if it is compacted or beyond the log.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func entry(at index: UInt64) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool {
        self.term(at: index) == term
    }

    /// Raft §5.4.1: a candidate's log is at least as up-to-date as ours if its last term is
    /// greater, or equal with a last index at least ours.
    func isUpToDate(lastIndex candidateIndex: UInt64, lastTerm candidateTerm: UInt64) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// Configuration in force at `index` (for snapshot metadata).
    func conf(at index: UInt64) -> ConfState {
        configs.last(where: { $0.index <= index })?.conf ?? baseConf
    }

    // MARK: Appending

    /// Leader append of new entries right after the last one.
    mutating func appendNew(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        precondition(first.index == lastIndex + 1, "leader append must follow the last entry")
        entries.append(contentsOf: newEntries)
        for entry in newEntries { noteConfig(entry) }
    }

    /// What ``maybeAppend(prevIndex:prevTerm:leaderCommit:entries:)`` did.
    enum AppendResult: Equatable {
        /// The entries are in the log; `lastNew` is the index of the last of them.
        case appended(lastNew: UInt64)
        /// The log does not hold `prevIndex` with `prevTerm` (the leader backs off).
        case mismatch
        /// Nothing changed: the entries would overwrite committed ones or leave a gap.
        case refused(String)
    }

    /// Follower side of AppendEntries (figure 2, receiver steps 2-5). `newEntries` must follow
    /// `prevIndex` one by one (admission checks it); anything that would rewrite committed
    /// entries or leave a gap is refused without changing the log.
    mutating func maybeAppend(prevIndex: UInt64, prevTerm: UInt64, leaderCommit: UInt64, entries newEntries: [Entry]) -> AppendResult {
        guard matchTerm(prevIndex, prevTerm) else { return .mismatch }
        let (lastNew, overflow) = prevIndex.addingReportingOverflow(UInt64(newEntries.count))
        guard !overflow else { return .refused("previous index \(prevIndex) plus \(newEntries.count) entries overflows") }
        let conflict = findConflict(newEntries)
        if conflict != 0 {
            guard conflict > committed else {
                return .refused("entry \(conflict) conflicts with the log at or below the commit index \(committed)")
            }
            guard conflict > prevIndex, conflict - (prevIndex + 1) < UInt64(newEntries.count) else {
                return .refused("conflicting entry \(conflict) is not among the entries after \(prevIndex)")
            }
            let offset = Int(conflict - (prevIndex + 1))
            guard truncateAndAppend(Array(newEntries[offset...])) else {
                return .refused("entries from \(conflict) would leave a gap after the last index \(lastIndex)")
            }
        }
        commit(to: min(leaderCommit, lastNew, lastIndex))
        return .appended(lastNew: lastNew)
    }

    /// First index whose entry differs from ours (or is new), or 0 if all are present.
    private func findConflict(_ newEntries: [Entry]) -> UInt64 {
        for entry in newEntries where !matchTerm(entry.index, entry.term) {
            return entry.index
        }
        return 0
    }

    /// Replaces the log from `newEntries.first.index` on; returns false (changing nothing) if that
    /// would leave a gap or rewrite the snapshot.
    private mutating func truncateAndAppend(_ newEntries: [Entry]) -> Bool {
        guard let first = newEntries.first else { return true }
        guard first.index > snapshotIndex && first.index <= lastIndex + 1 else { return false }
        if first.index <= lastIndex {
            entries.removeLast(Int(lastIndex - first.index + 1))
            configs.removeAll(where: { $0.index >= first.index })
            unstableFrom = min(unstableFrom, first.index)
        }
        entries.append(contentsOf: newEntries)
        for entry in newEntries { noteConfig(entry) }
        return true
    }

    private mutating func noteConfig(_ entry: Entry) {
        guard entry.kind == .configChange, let change = try? ConfChange.decode(entry.data) else { return }
        configs.append((entry.index, change.resultingConf))
    }

    /// Fast back-off helper (etcd `findConflictByTerm`): the largest index `<= index` whose term is
    /// `<= term`, with that term (0 if unknown because compacted).
    func findConflictByTerm(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var candidate = min(index, lastIndex)
        while true {
            guard let found = self.term(at: candidate) else { return (candidate, 0) }
            if found <= term { return (candidate, found) }
            if candidate == 0 { return (0, 0) }
            candidate -= 1
        }
    }

    /// Up to `maxCount` entries from `index` whose total data size stays within `maxBytes` (at
    /// least one entry if any exists).
    func entries(from index: UInt64, maxCount: Int, maxBytes: Int) -> [Entry] {
        guard index > snapshotIndex, index <= lastIndex else { return [] }
        let start = Int(index - snapshotIndex - 1)
        var end = start
        var bytes = 0
        while end < entries.count, end - start < maxCount {
            bytes += entries[end].data.count
            if end > start, bytes > maxBytes { break }
            end += 1
        }
        return Array(entries[start..<end])
    }

    // MARK: Commit, persistence and application

    /// Advances the commit index to `index`. Returns false (changing nothing) for an index beyond
    /// the log: only entries this node holds can be committed here. Callers bound the index
    /// (a heartbeat's commit beyond the log is refused at admission).
    @discardableResult
    mutating func commit(to index: UInt64) -> Bool {
        guard index > committed else { return true }
        guard index <= lastIndex else { return false }
        committed = index
        return true
    }

    var hasUnstable: Bool { unstableFrom <= lastIndex }

    /// Entries not yet handed out for persistence; marks them handed out.
    mutating func takeUnstable() -> [Entry] {
        guard unstableFrom <= lastIndex else { return [] }
        let start = Int(max(unstableFrom, firstIndex) - snapshotIndex - 1)
        unstableFrom = lastIndex + 1
        return Array(entries[start...])
    }

    var hasCommittedToApply: Bool { committed > applying }

    /// Committed entries not yet handed to the application; marks them handed out.
    mutating func takeCommitted() -> [Entry] {
        guard committed > applying else { return [] }
        let from = max(applying, snapshotIndex) + 1
        let start = Int(from - snapshotIndex - 1)
        let end = Int(committed - snapshotIndex)
        applying = committed
        return Array(entries[start..<end])
    }

    // MARK: Snapshots

    /// Discards entries up to `index` (which must be applied), keeping `term` as the snapshot term.
    mutating func compact(to index: UInt64) {
        precondition(index > snapshotIndex && index <= applied, "compaction must cover new, applied entries")
        guard let compactedTerm = term(at: index) else {
            preconditionFailure("compaction index \(index) is not in the log")
        }
        baseConf = conf(at: index)
        configs.removeAll(where: { $0.index <= index })
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = compactedTerm
    }

    /// Replaces the whole log with a snapshot received from the leader (Raft §7, figure 13 step 7).
    /// Returns false (changing nothing) for a snapshot at or below the commit index, which would
    /// undo committed entries (the caller answers such snapshots without restoring).
    mutating func restore(_ metadata: SnapshotMetadata) -> Bool {
        guard metadata.index > committed, metadata.index < UInt64.max else { return false }
        entries = []
        snapshotIndex = metadata.index
        snapshotTerm = metadata.term
        baseConf = metadata.conf
        configs = []
        committed = metadata.index
        applying = metadata.index
        unstableFrom = metadata.index + 1
        return true
    }
}
