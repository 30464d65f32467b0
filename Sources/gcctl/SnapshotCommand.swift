import ArgumentParser
import Foundation
import GCClient
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import Raft
import RaftSQLite

/// `gcctl snapshot`: backups of the lease state, like `etcdctl snapshot`.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Back up the lease state: save a snapshot, check a saved one.",
        discussion: "Restore a saved snapshot into a new cluster with `gc-sidecar restore FILE` on each node (README, Backup and recovery).",
        subcommands: [SnapshotSaveCommand.self, SnapshotStatusCommand.self])
}

/// `gcctl snapshot save FILE`: streams a consistent snapshot from a node and writes it atomically.
struct SnapshotSaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save a consistent, checksummed snapshot of every lease and cleanup to FILE (operator only).",
        discussion: """
            Any node may be asked: it confirms the leader's commit index (ReadIndex) and sends its state once applied \
            that far, so the snapshot holds every write acknowledged before the command started. FILE is written \
            under a temporary name, fsynced, renamed into place and read back to verify its checksum.
            """)

    @Argument(help: "Where to write the snapshot (replaced atomically if it exists).")
    var file: String

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        var options = connection.callOptions
        // A large state takes longer than one call's default.
        options.timeout = .seconds(max(60, connection.timeout))
        // The first endpoint that can serve it (NodeConnection's fail-over);
        // any node answers with a state that holds every acknowledged write.
        let received: (header: DistributedGc_SnapshotHeader, data: [UInt8])
        received = try await NodeConnection.withFailover(connection) { [options] client, _ in
            try await DistributedGc_BackupService.Client(wrapping: client).saveSnapshot(
                DistributedGc_SaveSnapshotRequest(), options: options
            ) { response in
                var header: DistributedGc_SnapshotHeader?
                var data: [UInt8] = []
                for try await chunk in response.messages {
                    switch chunk.part {
                    case .header(let h):
                        guard header == nil else { throw CommandFailure("the node sent two snapshot headers") }
                        guard h.size <= UInt64(Int.max) else { throw CommandFailure("the node announced an impossible size \(h.size)") }
                        header = h
                        data.reserveCapacity(Int(h.size))
                    case .data(let bytes):
                        guard let h = header else { throw CommandFailure("the node sent data before the snapshot header") }
                        guard UInt64(data.count + bytes.count) <= h.size else {
                            throw CommandFailure("the node sent more than the \(h.size) bytes it announced")
                        }
                        data.append(contentsOf: bytes)
                    case nil:
                        continue
                    }
                }
                guard let header else { throw CommandFailure("the node closed the stream without a snapshot") }
                return (header, data)
            }
        }
        let header = received.header
        guard UInt64(received.data.count) == header.size else {
            throw CommandFailure("the stream ended after \(received.data.count) of \(header.size) bytes; nothing was written")
        }
        let backup = SnapshotBackupFile(index: header.index, data: received.data)
        guard backup.checksum == header.crc32 else {
            throw CommandFailure("the received data fails its checksum (node: \(SnapshotBackupFile.checksumText(header.crc32)), received: \(backup.checksumText)); nothing was written")
        }
        do {
            try backup.write(to: file)
            let check = try SnapshotBackupFile.read(from: file)
            guard check == backup else { throw CommandFailure("\(file) does not read back as written") }
        } catch let error as CommandFailure {
            throw error
        } catch let error as RaftStorageError {
            throw CommandFailure("cannot write \(file): \(SnapshotBackupFile.describe(error))")
        }
        switch connection.output {
        case .json:
            let object: [String: Any] = [
                "file": file, "index": header.index, "term": header.term, "active_leases": header.activeLeases,
                "retained_leases": header.retainedLeases, "pending_cleanups": header.pendingCleanups,
                "dead_lettered_cleanups": header.deadLetteredCleanups, "bytes": backup.fileSize,
                "checksum": backup.checksumText, "taken_by": header.takenBy, "leader": header.leaderID,
                "taken_at_millis": header.takenAtMillis,
            ]
            let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: json, as: UTF8.self))
        case .table:
            print("""
                saved \(file)
                  index             \(header.index)
                  term              \(header.term)
                  leases            \(header.activeLeases) active, \(header.retainedLeases) retained in all
                  cleanups          \(header.pendingCleanups) pending, \(header.deadLetteredCleanups) dead-lettered
                  bytes             \(backup.fileSize)
                  checksum          \(backup.checksumText) (verified)
                  taken by          \(header.takenBy) (leader \(header.leaderID.isEmpty ? "unknown" : header.leaderID))
                """)
        }
    }
}

/// `gcctl snapshot status FILE`: checks a saved snapshot without a node.
struct SnapshotStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Verify a saved snapshot file (format and checksum) and show its index and size.")

    @Argument(help: "A file written by `gcctl snapshot save`.")
    var file: String

    @Option(name: [.customShort("w"), .long], help: "Output format: table or json.")
    var output: OutputFormat = .table

    func run() async throws {
        let backup: SnapshotBackupFile
        do {
            backup = try SnapshotBackupFile.read(from: file)
        } catch {
            throw CommandFailure(SnapshotBackupFile.describe(error))
        }
        switch output {
        case .json:
            let object: [String: Any] = ["file": file, "index": backup.index, "bytes": backup.fileSize, "checksum": backup.checksumText]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        case .table:
            print("\(file): index \(backup.index), \(backup.fileSize) bytes, \(backup.checksumText) (verified)")
        }
    }
}
