import Foundation
import GCProto
import Glibc
import Testing

/// The real `gcctl` binary against real nodes: every command's happy path
/// and its main error (not found, node down, bad flag), asserting exit
/// statuses (0 ok, 1 the cluster said no, 2 unreachable, 64 bad usage,
/// 130 interrupted) and what goes to stdout and stderr. Polling is bounded
/// by deadlines; nothing sleeps for luck.
@Suite("gcctl", .serialized)
struct GcctlTests {
    @Test("without a node: --version, --help with exit statuses, completion, bad flags exit 64, a down node exits 2 with one line")
    func withoutANode() async throws {
        let version = try await Gcctl.run(["--version"])
        #expect(version.status == 0, "\(version)")
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(version)")

        let help = try await Gcctl.run(["--help"])
        #expect(help.status == 0)
        for text in ["EXIT STATUS", "64", "GCCTL_ENDPOINTS", "--generate-completion-script"] {
            #expect(help.stdout.contains(text), "--help mentions \(text)")
        }
        let leaseHelp = try await Gcctl.run(["lease", "get", "--help"])
        let writeOut = leaseHelp.stdout.split(separator: "\n").first { $0.contains("--write-out") && !$0.contains("USAGE") } ?? ""
        for name in ["-w,", "-o,", "--output"] { #expect(writeOut.contains(name), "\(name) in \(writeOut)") }

        for shell in ["bash", "zsh", "fish"] {
            let script = try await Gcctl.run(["--generate-completion-script", shell])
            #expect(script.status == 0)
            #expect(script.stdout.contains("gcctl") && script.stdout.contains("lease"), "\(shell) completion")
        }

        let down = "127.0.0.1:\(try freePort())"
        let badFlag = try await Gcctl.run(["lease", "get", "some-lease", "--bogus", "--endpoint", down])
        #expect(badFlag.status == 64, "\(badFlag)")
        #expect(badFlag.stderr.contains("--bogus"))
        let both = try await Gcctl.run(["health", "--endpoint", down, "--endpoints", down])
        #expect(both.status == 64, "\(both)")
        let badFormat = try await Gcctl.run(["health", "-w", "yaml", "--endpoint", down])
        #expect(badFormat.status == 64, "\(badFormat)")
        let badPosition = try await Gcctl.run(["lease", "watch", "--from", "x.y", "--endpoint", down])
        #expect(badPosition.status == 64, "\(badPosition)")

        // The old bug: `dlq list --endpoint` was the cleanup filter.
        for arguments in [["health"], ["lease", "get", "x"], ["dlq", "list", "--target", "http://sink/cleanup"],
                          ["dlq", "retry", "--all"], ["cluster", "status"]] {
            let result = try await Gcctl.run(arguments + ["--endpoint", down, "--timeout", "3"])
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(result.stdout.isEmpty, "\(arguments): nothing on stdout")
            #expect(result.stderrLines.count == 1, "\(arguments): one line: \(result.stderr)")
            #expect(result.stderr.contains("connection refused") && result.stderr.contains(down), "\(arguments): \(result.stderr)")
        }
        // Every endpoint down: one line naming each.
        let other = "127.0.0.1:\(try freePort())"
        let all = try await Gcctl.run(["health"], environment: ["GCCTL_ENDPOINTS": "\(down),\(other)"])
        #expect(all.status == 2, "\(all)")
        #expect(all.stderrLines.count == 1 && all.stderr.contains(down) && all.stderr.contains(other), "\(all.stderr)")
    }

    @Test("lease commands: create, get, list, renew, release, force-release and watch, with fail-over over the endpoints")
    func leaseCommands() async throws {
        try await withProcessCluster { cluster in
            try await cluster.waitForLeader()
            let down = "127.0.0.1:\(try freePort())"
            let endpoints = ([down] + cluster.nodes.map(\.endpoint)).joined(separator: ",")
            // GCCTL_ENDPOINTS: the down endpoint first, the call goes to the next.
            let env = ["GCCTL_ENDPOINTS": endpoints]

            let created = try await Gcctl.run(["lease", "create", "--object-id", "row-1", "--object-type", "database-row",
                                               "--service-id", "svc", "--duration", "300", "-w", "json"], environment: env)
            #expect(created.status == 0, "\(created)")
            let leaseID = try #require(try created.json()["leaseId"] as? String, "\(created.stdout)")
            let fencing = try #require(Int(try created.json()["fencingToken"] as? String ?? ""), "\(created.stdout)")
            // A TLS client on the plaintext port: one line saying TLS, exit 2.
            let tls = try await Gcctl.run(["health", "--tls", "--timeout", "3", "--endpoint", cluster.nodes[1].endpoint])
            #expect(tls.status == 2, "\(tls)")
            #expect(tls.stderrLines.count == 1 && tls.stderr.contains("TLS"), "\(tls.stderr)")
            let missingCreate = try await Gcctl.run(["lease", "create", "--object-id", "x"], environment: env)
            #expect(missingCreate.status == 64, "--service-id is required: \(missingCreate)")

            let got = try await Gcctl.run(["lease", "get", leaseID], environment: env)
            #expect(got.status == 0, "\(got)")
            #expect(got.stdout.contains(leaseID) && got.stdout.contains("active"), "\(got.stdout)")
            let gotJSON = try await Gcctl.run(["lease", "get", leaseID, "--output", "json", "--stale"], environment: env)
            #expect(try gotJSON.json()["objectId"] as? String == "row-1", "--output stays an alias of -w")
            let missing = try await Gcctl.run(["lease", "get", "no-such-lease"], environment: env)
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stdout.isEmpty)
            #expect(missing.stderrLines == ["Error: lease no-such-lease not found"], "one line, no usage text: \(missing.stderr)")

            for i in 2...4 {
                _ = try await cluster.create(via: 0, object: "row-\(i)")
            }
            let listed = try await Gcctl.run(["lease", "list", "--all", "--progress", "--service-id", "svc", "-w", "json"], environment: env)
            #expect(listed.status == 0, "\(listed)")
            let leases = try #require(try listed.json()["leases"] as? [[String: Any]], "stdout is JSON only: \(listed.stdout)")
            #expect(leases.count == 4)
            #expect(listed.stderr.contains("listing: 4 leases in 1 page"), "progress on stderr: \(listed.stderr)")
            let table = try await Gcctl.run(["lease", "list", "--max", "2"], environment: env)
            #expect(table.status == 0)
            #expect(table.stdoutLines.count == 3 && table.stdoutLines[0].hasPrefix("LEASE"), "\(table.stdout)")
            #expect(table.stderr.isEmpty, "no progress when stderr is not a terminal and --progress is not given")
            let listBoth = try await Gcctl.run(["lease", "list", "--all", "--max", "2"], environment: env)
            #expect(listBoth.status == 64)

            let renewed = try await Gcctl.run(["lease", "renew", leaseID, "--service-id", "svc", "--extend", "600"], environment: env)
            #expect(renewed.status == 0, "\(renewed)")
            #expect(renewed.stdout.contains("renewed"))
            let renewMissing = try await Gcctl.run(["lease", "renew", "no-such-lease", "--service-id", "svc"], environment: env)
            #expect(renewMissing.status == 1, "\(renewMissing)")
            let row = renewMissing.stdoutLines.first { $0.hasPrefix("no-such-lease") } ?? ""
            #expect(!row.isEmpty && !row.contains("renewed"), "the result row says why: \(renewMissing.stdout)")

            // watch: from the first create on, then live; JSON lines.
            let watch = try Gcctl.start(["lease", "watch", "--service", "svc", "--from", "\(fencing)", "-w", "json",
                                         "--endpoints", cluster.nodes.map(\.endpoint).joined(separator: ",")])
            defer { watch.kill() }
            let early = try await watch.waitForStdout("the three later creates and the renewal", timeout: .seconds(10)) { lines in
                lines.filter { $0.contains("\"CREATED\"") }.count >= 3 && lines.contains { $0.contains("\"RENEWED\"") && $0.contains(leaseID) }
            }
            #expect(!early.contains { $0.contains("\"CREATED\"") && $0.contains(leaseID) }, "after --from \(fencing): not the create at \(fencing)")
            #expect(watch.stderr.isEmpty, "\(watch.stderr)")

            let wrongHolder = try await Gcctl.run(["lease", "release", leaseID, "--service-id", "other"], environment: env)
            #expect(wrongHolder.status == 1, "\(wrongHolder)")
            #expect(wrongHolder.stderrLines.count == 1, "\(wrongHolder.stderr)")
            let released = try await Gcctl.run(["lease", "release", leaseID, "--service-id", "svc"], environment: env)
            #expect(released.status == 0, "\(released)")
            #expect(released.stdout.contains("released"))
            _ = try await watch.waitForStdout("the release", timeout: .seconds(10)) { lines in
                lines.contains { $0.contains("\"RELEASED\"") && $0.contains(leaseID) }
            }

            let forced = try await Gcctl.run(["lease", "list", "--service-id", "svc", "--state", "active", "-w", "json"], environment: env)
            let victim = try #require((try forced.json()["leases"] as? [[String: Any]])?.first?["leaseId"] as? String)
            let force = try await Gcctl.run(["lease", "force-release", victim, "--reason", "operator test"], environment: env)
            #expect(force.status == 0, "\(force)")
            #expect(force.stdout.contains("released"), "\(force.stdout)")
            let forceMissing = try await Gcctl.run(["lease", "force-release", "no-such-lease", "--reason", "x"], environment: env)
            #expect(forceMissing.status == 1, "\(forceMissing)")
            #expect(forceMissing.stderrLines.count == 1 && forceMissing.stderr.contains("NOT_FOUND"), "\(forceMissing.stderr)")

            // The watched node goes down: the watch resumes on the next
            // endpoint after the last event it printed, losing and repeating none.
            let before = watch.stdoutLines.count
            cluster.nodes[0].kill9()
            let survivor = try await cluster.waitForLeader(timeout: .seconds(15), excluding: [0])
            let late = try await cluster.create(via: survivor, object: "after-failover")
            let lines = try await watch.waitForStdout("the create after the fail-over", timeout: .seconds(20)) { lines in
                lines.contains { $0.contains(late.leaseID) }
            }
            #expect(lines.count > before)
            let events = lines.compactMap { line -> String? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                return "\(object["index"] ?? "").\(object["position"] ?? 0)"
            }
            #expect(events.count == lines.count, "every line is one JSON event")
            #expect(Set(events).count == events.count, "no event printed twice: \(lines)")
            #expect(watch.stderr.contains("resuming after"), "the break is reported on stderr: \(watch.stderr)")

            watch.interrupt()
            #expect(try await watch.wait(timeout: .seconds(5)) == 130, "Ctrl-C ends the watch with 130")
        }
    }

    @Test("cluster, health, metrics, dlq, bench and load commands, each with its main error")
    func clusterAndOperatorCommands() async throws {
        try await withProcessCluster { cluster in
            let leader = try await cluster.waitForLeader()
            let node = ["--endpoint", cluster.nodes[leader].endpoint]

            let status = try await Gcctl.run(["cluster", "status"] + node)
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("cluster healthy") && status.stdout.contains("leader"), "\(status.stdout)")
            let statusJSON = try await Gcctl.run(["cluster", "status", "-o", "json"] + node)
            #expect((try statusJSON.json()["nodes"] as? [Any])?.count == 3, "\(statusJSON.stdout)")

            let target = cluster.nodes[(leader + 1) % 3].name
            let moved = try await Gcctl.run(["cluster", "transfer-leader", target] + node)
            #expect(moved.status == 0, "\(moved)")
            #expect(moved.stdout.contains(target))
            let newLeader = try await cluster.waitForLeader()
            let via = ["--endpoint", cluster.nodes[newLeader].endpoint]
            let noSuchVoter = try await Gcctl.run(["cluster", "transfer-leader", "n9"] + via)
            #expect(noSuchVoter.status == 1, "\(noSuchVoter)")
            #expect(noSuchVoter.stderrLines.count == 1, "\(noSuchVoter.stderr)")

            // A fourth node joins (learner, caught up, promoted) and leaves.
            let raftPort = try freePort()
            let joining = SidecarProcess(
                name: "n4", clientPort: try freePort(), raftPort: raftPort, metricsPort: try freePort(), directory: cluster.directory,
                environment: ["GC_CLUSTER_STATE": "existing",
                              "GC_PEERS": (cluster.nodes.map { "\($0.name)=127.0.0.1:\($0.raftPort)" } + ["n4=127.0.0.1:\(raftPort)"])
                                  .joined(separator: ",")])
            try joining.start()
            defer { joining.kill9() }
            let added = try await Gcctl.run(["cluster", "add", "n4", "127.0.0.1:\(raftPort)", "--progress", "-w", "json"] + via,
                                            timeout: .seconds(60))
            #expect(added.status == 0, "\(added)\n\(cluster.logs())")
            #expect((try added.json()["voters"] as? [String])?.contains("n4") == true, "stdout is the JSON answer only: \(added.stdout)")
            let removed = try await Gcctl.run(["cluster", "remove", "n4"] + via)
            #expect(removed.status == 0, "\(removed)")
            #expect(!removed.stdout.contains("n4"), "\(removed.stdout)")
            let removeUnknown = try await Gcctl.run(["cluster", "remove", "n9"] + via)
            #expect(removeUnknown.status == 1, "\(removeUnknown)")
            let addBad = try await Gcctl.run(["cluster", "add", "n5"] + via)
            #expect(addBad.status == 64, "the peer address is required: \(addBad)")

            let health = try await Gcctl.run(["health"] + via)
            #expect(health.status == 0, "\(health)")
            #expect(health.stdout.contains("healthy") && health.stdout.contains(cluster.nodes[newLeader].name), "\(health.stdout)")
            let metrics = try await Gcctl.run(["metrics", "-w", "json"] + via)
            #expect(metrics.status == 0, "\(metrics)")
            #expect((try? metrics.json()) != nil, "stdout is one JSON object: \(metrics.stdout)")
            let metricsTable = try await Gcctl.run(["metrics"] + via)
            #expect(metricsTable.stdout.contains("leases created"), "\(metricsTable.stdout)")

            // A cleanup to a port nobody listens on: dead-lettered after its retries.
            let sink = "http://127.0.0.1:\(try freePort())/cleanup"
            let doomed = try await Gcctl.run(["lease", "create", "--object-id", "doomed", "--service-id", "dlq-svc", "--duration", "1",
                                              "--cleanup-http", sink, "--max-retries", "1", "--retry-delay", "1", "-w", "json"] + via)
            #expect(doomed.status == 0, "\(doomed)")
            let doomedID = try #require(try doomed.json()["leaseId"] as? String)
            let deadline = ContinuousClock.now + .seconds(30)
            var listed = try await Gcctl.run(["dlq", "list", "--target", sink, "-w", "json"] + via)
            // Protobuf JSON leaves an empty list out: `{}`.
            while try !(listed.json()["leases"] is [Any]) {
                guard ContinuousClock.now < deadline else {
                    Issue.record("\(doomedID) was not dead-lettered in time: \(listed)\n\(cluster.logs())")
                    return
                }
                try await Task.sleep(for: .milliseconds(200))
                listed = try await Gcctl.run(["dlq", "list", "--target", sink, "-w", "json"] + via)
            }
            #expect(listed.stdout.contains(doomedID))
            let table = try await Gcctl.run(["dlq", "list"] + via)
            #expect(table.stdout.contains("TARGET") && table.stdout.contains(doomedID), "\(table.stdout)")
            let otherTarget = try await Gcctl.run(["dlq", "list", "--target", "http://elsewhere/cleanup", "-w", "json"] + via)
            #expect(otherTarget.status == 0)
            #expect(!otherTarget.stdout.contains(doomedID), "--target filters: \(otherTarget.stdout)")

            let retried = try await Gcctl.run(["dlq", "retry", doomedID] + via)
            #expect(retried.status == 0, "\(retried)")
            #expect(retried.stdout.contains("queued again"))
            let retryMissing = try await Gcctl.run(["dlq", "retry", "no-such-lease"] + via)
            #expect(retryMissing.status == 1, "\(retryMissing)")
            #expect(retryMissing.stderrLines.count == 1, "\(retryMissing.stderr)")
            let retryAll = try await Gcctl.run(["dlq", "retry", "--all", "--target", sink, "--progress", "-w", "json"] + via)
            #expect(retryAll.status == 0, "\(retryAll)")
            #expect(retryAll.stderr.contains("dlq retry: round 1"), "progress on stderr: \(retryAll.stderr)")
            #expect((try? retryAll.json()) != nil, "stdout stays JSON: \(retryAll.stdout)")
            for usage in [["dlq", "retry"], ["dlq", "retry", doomedID, "--all"], ["dlq", "retry", doomedID, "--target", sink]] {
                let result = try await Gcctl.run(usage + via)
                #expect(result.status == 64, "\(usage): \(result)")
            }

            // A frozen node accepts the connection and never answers: a timeout, exit 2.
            let frozen = cluster.nodes[(newLeader + 1) % 3]
            frozen.pause()
            let timedOut = try await Gcctl.run(["health", "--timeout", "1", "--endpoint", frozen.endpoint])
            frozen.resume()
            #expect(timedOut.status == 2, "\(timedOut)")
            #expect(timedOut.stderrLines.count == 1 && timedOut.stderr.contains("timed out after 1s"), "\(timedOut.stderr)")

            // bench and load: a smoke run each.
            let bench = try await Gcctl.run(["bench", "create", "--duration", "0.3", "--warmup", "0", "--concurrency", "2",
                                             "--connections", "1", "-w", "json", "--endpoint", cluster.nodes[newLeader].endpoint],
                                            timeout: .seconds(20))
            #expect(bench.status == 0, "\(bench)")
            #expect((try? bench.json()) != nil, "\(bench.stdout)")
            let badBench = try await Gcctl.run(["bench", "frobnicate"])
            #expect(badBench.status == 64)

            let ids = "\(cluster.directory)/load-ids.txt"
            let load = try await Gcctl.run(["load", "create", "--count", "5", "--ids-file", ids, "--concurrency", "2", "--connections", "1"] + via,
                                           timeout: .seconds(20))
            #expect(load.status == 0, "\(load)")
            #expect(try String(contentsOfFile: ids, encoding: .utf8).split(separator: "\n").count == 5)
            let unload = try await Gcctl.run(["load", "release", "--ids-file", ids, "--concurrency", "2", "--connections", "1"] + via,
                                             timeout: .seconds(20))
            #expect(unload.status == 0, "\(unload)")
            let noFile = try await Gcctl.run(["load", "release", "--ids-file", "\(cluster.directory)/missing.txt"] + via)
            #expect(noFile.status != 0, "\(noFile)")
        }
    }
}

/// Runs the `gcctl` binary built beside the tests (or in GC_TEST_BIN_DIR).
enum Gcctl {
    struct Result: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String

        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }

        /// stdout parsed as one JSON object.
        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
                throw ClusterTestFailure("stdout is not a JSON object: \(stdout)")
            }
            return object
        }

        var description: String { "exit \(status)\n--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)" }
    }

    /// Runs gcctl to completion (killed, and the test failed, past `timeout`).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(15)) async throws -> Result {
        let running = try start(arguments, environment: environment)
        let status = try await running.wait(timeout: timeout)
        return Result(status: status, stdout: running.stdout, stderr: running.stderr)
    }

    /// Starts gcctl with stdout and stderr going to files (no pipe to fill up).
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Running {
        try Running(arguments, environment: environment)
    }

    /// A gcctl process still running.
    final class Running: @unchecked Sendable {
        // @unchecked: only the owning test task uses it, in sequence.
        let process = Process()
        let arguments: [String]
        private let directory: URL

        init(_ arguments: [String], environment: [String: String]) throws {
            self.arguments = arguments
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("gcctl-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            process.executableURL = URL(fileURLWithPath: try SidecarBinary.path(of: "gcctl"))
            process.arguments = arguments
            var env = ProcessInfo.processInfo.environment
            // The test's own environment must not pick endpoints or TLS.
            for key in env.keys where key.hasPrefix("GCCTL_") { env[key] = nil }
            for (k, v) in environment { env[k] = v }
            process.environment = env
            FileManager.default.createFile(atPath: directory.appendingPathComponent("out").path, contents: nil)
            FileManager.default.createFile(atPath: directory.appendingPathComponent("err").path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("out"))
            process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("err"))
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        var stdout: String { (try? String(contentsOf: directory.appendingPathComponent("out"), encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: directory.appendingPathComponent("err"), encoding: .utf8)) ?? "" }
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }

        /// Waits until `condition` holds for stdout's lines (polling, bounded
        /// by `timeout`); returns them.
        func waitForStdout(_ what: String, timeout: Duration, _ condition: ([String]) -> Bool) async throws -> [String] {
            let deadline = ContinuousClock.now + timeout
            while true {
                let lines = stdoutLines
                if condition(lines) { return lines }
                guard process.isRunning, ContinuousClock.now < deadline else {
                    throw ClusterTestFailure("gcctl \(arguments.joined(separator: " ")): \(what) not seen within \(timeout)\n"
                                             + "--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        /// The exit status; past `timeout` the process is killed and the wait fails.
        func wait(timeout: Duration) async throws -> Int32 {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                guard ContinuousClock.now < deadline else {
                    kill()
                    throw ClusterTestFailure("gcctl \(arguments.joined(separator: " ")) still running after \(timeout)\n"
                                             + "--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return process.terminationStatus
        }

        /// Ctrl-C.
        func interrupt() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGINT) }
        }

        func kill() {
            guard process.isRunning else { return }
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
