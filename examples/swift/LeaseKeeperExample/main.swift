// A service that holds leases on its temporary files while it works on them,
// using the GCClient library: create, keep renewed with LeaseKeeper, stop
// using a file the moment its lease is in jeopardy, release when done.
//
//   swift run lease-keeper-example --endpoints 127.0.0.1:50051,127.0.0.1:50061,127.0.0.1:50071 --seconds 30
//
// Try `kill -9` on the leader while it runs: renewals move to another node
// and no lease falls into jeopardy.
import GCClient
import GCProto
import Synchronization

@main
struct LeaseKeeperExample {
    static func main() async throws {
        var endpoints = ["127.0.0.1:50051"]
        var seconds = 20
        var files = 10
        var args = CommandLine.arguments.dropFirst()
        while let arg = args.popFirst() {
            switch arg {
            case "--endpoints": endpoints = (args.popFirst() ?? "").split(separator: ",").map(String.init)
            case "--seconds": seconds = Int(args.popFirst() ?? "") ?? seconds
            case "--files": files = Int(args.popFirst() ?? "") ?? files
            default:
                print("usage: lease-keeper-example [--endpoints host:port,...] [--seconds N] [--files N]")
                return
            }
        }
        let serviceID = "file-service"
        // Files whose lease may have lapsed: the worker must stop touching them.
        let abandoned = Mutex<Set<String>>([])

        try await GCClient.with(endpoints: endpoints) { client in
            let keeper = LeaseKeeper(client: client, safetyMargin: .seconds(2)) { jeopardy in
                print("jeopardy: \(jeopardy.leaseID): \(jeopardy.reason); stop using its file")
                _ = abandoned.withLock { $0.insert(jeopardy.leaseID) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await keeper.run() }

                var leases: [String] = []
                for i in 0..<files {
                    var cleanup = DistributedGc_CleanupConfig()
                    cleanup.cleanupHTTPEndpoint = "http://127.0.0.1:8080/cleanup"  // where the file would be deleted
                    cleanup.cleanupPayload = #"{"path":"/tmp/upload-\#(i)"}"#
                    let sent = ContinuousClock.now
                    let lease = try await client.createLease(
                        objectID: "/tmp/upload-\(i)", objectType: .temporaryFile, serviceID: serviceID,
                        duration: .seconds(30), cleanup: cleanup)
                    await keeper.keep(leaseID: lease.leaseID, serviceID: serviceID, ttl: .seconds(30), confirmedAt: sent)
                    leases.append(lease.leaseID)
                }
                print("holding \(leases.count) leases for \(seconds) s (renewed every 10 s)")
                try await Task.sleep(for: .seconds(seconds))

                for id in leases {
                    await keeper.stopKeeping(id)
                    if abandoned.withLock({ $0.contains(id) }) { continue }  // may already be cleaned
                    try await client.releaseLease(id, serviceID: serviceID)
                }
                let lost = abandoned.withLock { $0.count }
                print("released \(leases.count - lost) leases; \(lost) were in jeopardy")
                group.cancelAll()
            }
        }
    }
}
