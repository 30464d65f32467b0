import Foundation
import GRPCNIOTransportHTTP2
import Testing

/// A real reflection client against a real node: `examples/python/reflect.sh`
/// (grpcio-reflection's `ProtoReflectionDescriptorDatabase`, as grpcurl's
/// `list` and `describe`) lists the client port's services, describes
/// `DistributedGCService.CreateLease`, calls it with messages built from the
/// reflected descriptors alone, and checks NOT_FOUND answers on v1 and
/// v1alpha streams. The script checks every answer and exits non-zero on
/// the first surprise. Needs `python3` and, on its first run, `pip install`
/// of examples/python/requirements.txt (kept in `.build-python/venv`).
@Suite("Python reflection client against a real node")
struct PythonReflectionTests {
    @Test("grpcio-reflection lists the client port's services and describes and calls CreateLease without a .proto file")
    func pythonReflectionClientListsAndDescribes() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gc-python-reflection-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = [try freePort(), try freePort(), try freePort()]
        // A single node: no GC_PEERS, it elects itself at start.
        let node = SidecarProcess(
            name: "n1", clientPort: ports[0], raftPort: ports[1], metricsPort: ports[2],
            directory: directory, environment: ["GC_LOG_LEVEL": "info"])
        defer {
            node.stop()
            if ProcessInfo.processInfo.environment["GC_KEEP_CLUSTER_DIR"] == nil {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        try node.start()
        try await PythonExampleTests.waitUntilServing(node, security: .plaintext, timeout: .seconds(30))

        let script = PythonExampleTests.repositoryRoot.appendingPathComponent("examples/python/reflect.sh").path
        let outputPath = "\(directory)/reflect.out"
        let status = try await PythonExampleTests.run(
            "bash", [script, "--endpoint", node.endpoint], outputPath: outputPath, timeout: .seconds(300))
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "(no output)"
        let report = "--- examples/python/reflect.sh output ---\n\(output)\n--- \(node.name) log (tail) ---\n\(node.logTail())"
        let finished = try #require(status, "examples/python/reflect.sh did not finish within 300 s (terminated)\n\(report)")
        #expect(finished == 0, "examples/python/reflect.sh failed with exit status \(finished)\n\(report)")
        #expect(output.contains("OK: reflection lists 6 services"), "the script did not print its success summary\n\(report)")
    }
}
