import Foundation
import GCProto
import GRPCCore
import LeaseFSM
import RaftSQLite

/// `BackupService` (proto/backup.proto) on the client port: streams a consistent snapshot for
/// `gcctl snapshot save`. Not listed in ``Permission/required(service:method:)``, so it needs
/// the operator role (`cluster.admin`) when authorization is on.
public struct BackupService: DistributedGc_BackupService.SimpleServiceProtocol {
    let store: RaftLeaseStore
    let clock: any WallClock
    let nodeName: String
    /// Bytes of state per `data` message.
    static let chunkSize = 1 << 20

    public init(store: RaftLeaseStore, clock: any WallClock, nodeName: String) {
        self.store = store
        self.clock = clock
        self.nodeName = nodeName
    }

    public func saveSnapshot(request: DistributedGc_SaveSnapshotRequest, response: RPCWriter<DistributedGc_SnapshotChunk>,
                             context: ServerContext) async throws {
        let state = try await store.backupState()
        let takenAt = clock.now()
        // Encoding a large state takes a while: off the caller's executor, never on the store.
        let encoded = await Task.detached(priority: .utility) { () -> Result<[UInt8], LeaseStateMachine.EncodingError> in
            do throws(LeaseStateMachine.EncodingError) {
                return .success(try state.machine.snapshot())
            } catch {
                return .failure(error)
            }
        }.value
        let data: [UInt8]
        switch encoded {
        case .success(let bytes): data = bytes
        case .failure(let error): throw RPCError(code: .internalError, message: "the lease state could not be encoded: \(error.message)")
        }
        var header = DistributedGc_SnapshotHeader()
        header.index = state.machine.appliedIndex
        header.term = state.term
        header.size = UInt64(data.count)
        header.crc32 = SnapshotBackupFile.checksum(data)
        header.activeLeases = UInt64(state.machine.activeLeaseCount)
        header.retainedLeases = UInt64(state.machine.retainedLeaseCount)
        header.pendingCleanups = UInt64(state.machine.pendingCleanupCount)
        header.deadLetteredCleanups = UInt64(state.machine.deadLetteredCleanupCount)
        header.takenBy = nodeName
        header.leaderID = state.leaderName ?? ""
        header.takenAtMillis = takenAt.milliseconds
        var first = DistributedGc_SnapshotChunk()
        first.header = header
        try await response.write(first)
        var offset = 0
        while offset < data.count {
            let end = min(offset + Self.chunkSize, data.count)
            var chunk = DistributedGc_SnapshotChunk()
            chunk.data = Data(data[offset..<end])
            try await response.write(chunk)
            offset = end
        }
    }
}
