import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GCProto
import TestPKI
import Testing

/// The status page at `/ui`, loaded by a real headless Chromium against
/// three real `gc-sidecar` processes; every assertion is on the DOM the
/// page's script rendered. The browser is driven by
/// `scripts/browser-dom.py` (DevTools protocol over a pipe, standard
/// library only), which keeps the page open so the live tail runs.
@Suite("Status page in a real browser", .serialized, .timeLimit(.minutes(3)))
struct StatusPageBrowserTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let script = "\(repository)/scripts/browser-dom.py"

    @Test("a follower's page shows the leader, lease counts by service and type, a dead letter and live events; a dead node shows as unreachable")
    func rendersLiveClusterInChromium() async throws {
        try Self.requireChromium()
        // One retry 1 s apart: a cleanup to a closed port is dead-lettered in seconds.
        try await withProcessCluster(environment: ["GC_CLEANUP_MAX_RETRIES": "1", "GC_CLEANUP_RETRY_DELAY": "1"]) { cluster in
            let leader = try await cluster.waitForLeader()
            let leaderName = cluster.nodes[leader].name
            let follower = (leader + 1) % 3
            let other = (leader + 2) % 3
            for n in 1...3 { _ = try await cluster.create(via: leader, object: "order-\(n)", service: "ui-orders") }
            for n in 1...2 { _ = try await cluster.create(via: follower, object: "upload-\(n)", service: "ui-uploads") }
            // Nothing listens on port 9: this lease's cleanup fails and is dead-lettered.
            let doomed = try await cluster.create(via: leader, object: "report-7", duration: 1,
                                                  cleanupURL: "http://127.0.0.1:9/cleanup", service: "ui-reports")
            _ = try await cluster.eventually("the cleanup of \(doomed.leaseID) is dead-lettered", timeout: .seconds(30)) {
                try await cluster.get(via: leader, doomed.leaseID).lease.cleanupState == .cleanupDeadLettered ? true : nil
            }

            let page = "\(cluster.tls == nil ? "http" : "https")://127.0.0.1:\(cluster.nodes[follower].metricsPort)/ui"
            let signal = "\(cluster.directory)/page-loaded"
            // Loaded with the whole state shown, then a lease created now must arrive over SSE.
            let loaded = """
                document.body.dataset.loaded === 'true' && document.querySelector('#leader').dataset.leader === '\(leaderName)' \
                && document.querySelector('#dead-letters tr[data-lease-id="\(doomed.leaseID)"]') !== null \
                && document.querySelector('#leases-by-service tr[data-service="ui-uploads"][data-count="2"]') !== null
                """
            let browser = try Self.startBrowser(page, until: loaded, afterFile: signal,
                                                thenWaitFor: "document.querySelector('#activity tr[data-kind=\"created\"][data-object-id=\"live-1\"]') !== null",
                                                insecure: cluster.tls != nil, output: "\(cluster.directory)/dom-1.html")
            _ = try await cluster.eventually("the page loads in Chromium (\(browser.output))", timeout: .seconds(60)) {
                FileManager.default.fileExists(atPath: signal) ? true : (browser.process.isRunning ? nil : true)
            }
            _ = try await cluster.create(via: other, object: "live-1", service: "ui-live")
            let (status, dom) = try await browser.finish(timeout: .seconds(60))
            #expect(status == 0, "browser-dom.py: \(browser.errors())")

            #expect(dom.contains(#"id="served-by">\#(cluster.nodes[follower].name)<"#), "a follower serves the page")
            #expect(dom.contains(#"id="leader" data-leader="\#(leaderName)""#), "the leader is shown")
            #expect(dom.contains(#"data-node="\#(leaderName)" data-role="leader" data-reachable="true""#))
            for i in [follower, other] {
                #expect(dom.contains(#"data-node="\#(cluster.nodes[i].name)" data-role="follower" data-reachable="true""#))
            }
            #expect(dom.contains(#"<tr data-service="ui-orders" data-count="3">"#), "lease counts by service match")
            #expect(dom.contains(#"<tr data-service="ui-uploads" data-count="2">"#))
            #expect(!dom.contains(#"<tr data-service="ui-reports""#), "the expired lease is not active")
            #expect(dom.contains(#"<tr data-type="DATABASE_ROW" data-count="5">"#) || dom.contains(#"<tr data-type="DATABASE_ROW" data-count="6">"#),
                    "lease counts by type match (6 once the live lease is in)")
            #expect(dom.contains(#"<tr data-lease-id="\#(doomed.leaseID)" data-service="ui-reports">"#), "the dead letter is listed")
            #expect(dom.contains(#"id="dead-letter-total" data-count="1""#))
            #expect(dom.contains("http://127.0.0.1:9/cleanup"))
            #expect(dom.contains(#"data-kind="created" data-lease-id=""#) && dom.contains(#"data-object-id="live-1""#),
                    "a lease created after the page loaded arrived in the live tail")

            // The row's Retry button: without a policy anyone may (with one the
            // page would ask for an operator token, which a test browser cannot type).
            if cluster.tls == nil {
                let retried = try Self.startBrowser(
                    page, until: "document.querySelector('#dead-letters tr[data-lease-id=\"\(doomed.leaseID)\"] button') !== null",
                    click: "#dead-letters tr[data-lease-id=\"\(doomed.leaseID)\"] button",
                    thenWaitFor: "document.querySelector('#activity tr[data-kind=\"cleanup_retried\"][data-lease-id=\"\(doomed.leaseID)\"]') !== null",
                    insecure: false, output: "\(cluster.directory)/dom-retry.html")
                let (retryStatus, retryDOM) = try await retried.finish(timeout: .seconds(60))
                #expect(retryStatus == 0, "browser-dom.py: \(retried.errors())")
                #expect(retryDOM.contains("Retried 1 cleanup(s) as anonymous."), "the page reports the retry")
                #expect(retryDOM.contains(#"data-kind="cleanup_retried" data-lease-id="\#(doomed.leaseID)""#))
                // What a cross-site form could send is refused before anything is read.
                var form = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(cluster.nodes[follower].metricsPort)/ui/api/dead-letters/retry")))
                form.httpMethod = "POST"
                form.setValue("text/plain", forHTTPHeaderField: "Content-Type")
                form.httpBody = Data(#"{"all": true}"#.utf8)
                let (_, refused) = try await URLSession.shared.data(for: form)
                #expect((refused as? HTTPURLResponse)?.statusCode == 415)
            }

            // A node down: still rendered, shown as unreachable, with the leader.
            cluster.nodes[other].kill9()
            let down = cluster.nodes[other].name
            let degraded = try Self.startBrowser(
                page, until: "document.querySelector('#cluster-nodes tr[data-node=\"\(down)\"][data-reachable=\"false\"]') !== null",
                insecure: cluster.tls != nil, output: "\(cluster.directory)/dom-2.html")
            let (degradedStatus, degradedDOM) = try await degraded.finish(timeout: .seconds(60))
            #expect(degradedStatus == 0, "browser-dom.py: \(degraded.errors())")
            #expect(degradedDOM.contains(#"data-node="\#(down)" data-role="unreachable" data-reachable="false""#))
            #expect(degradedDOM.contains(#"id="leader" data-leader="\#(leaderName)""#), "two of three still have the leader")
            #expect(degradedDOM.contains(#"<tr data-service="ui-orders" data-count="3">"#))
        }
    }

    @Test("with a policy and client certificates on the metrics port, only an operator's certificate may retry a dead letter")
    func retryOnTheMetricsPortNeedsAnOperator() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gc-ui-pki-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try TestPKI(directory: directory)
        let tls = ClusterTLS(pki: pki, policy: "identities:\n  ops: { roles: [operator] }\n  svc-a: { services: [svc-a] }\n")
        let environment = ["GC_METRICS_TLS_CLIENT_CA_FILE": pki.caFile, "GC_CLEANUP_MAX_RETRIES": "1", "GC_CLEANUP_RETRY_DELAY": "1"]
        try await withProcessCluster(environment: environment, tls: tls) { cluster in
            let leader = try await cluster.waitForLeader()
            let follower = (leader + 1) % 3
            let doomed = try await cluster.create(via: leader, object: "report-8", duration: 1,
                                                  cleanupURL: "http://127.0.0.1:9/cleanup", service: "svc-a")
            _ = try await cluster.eventually("the cleanup of \(doomed.leaseID) is dead-lettered", timeout: .seconds(30)) {
                try await cluster.get(via: leader, doomed.leaseID).lease.cleanupState == .cleanupDeadLettered ? true : nil
            }
            let base = "https://127.0.0.1:\(cluster.nodes[follower].metricsPort)/ui/api"
            /// curl with `identity`'s certificate (nil: none); the HTTP status and body.
            func call(_ identity: String?, _ arguments: [String]) throws -> (status: String, body: String) {
                var curl = ["curl", "-sS", "--max-time", "10", "--cacert", pki.caFile, "-w", "\n%{http_code}"]
                if let identity {
                    let cert = try pki.client(identity)
                    curl += ["--cert", cert.certificateFile, "--key", cert.keyFile]
                }
                let (_, output) = try SecurityTests.run("/usr/bin/env", curl + arguments)
                let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
                return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
            }
            let retry = ["-H", "Content-Type: application/json", "-d", #"{"leaseIds": ["\#(doomed.leaseID)"]}"#, "\(base)/dead-letters/retry"]

            let status = try call("svc-a", ["\(base)/status"])
            #expect(status.status == "200")
            #expect(status.body.contains(#""retryRequires":"operator token or client certificate""#), "\(status.body)")
            let reader = try call("svc-a", retry)
            #expect(reader.status == "403", "a non-operator's certificate is refused: \(reader)")
            #expect(reader.body.contains("not an operator"))
            let anonymous = try call(nil, retry)
            #expect(anonymous.status != "200", "without a certificate the metrics port does not even accept the connection: \(anonymous)")
            let ops = try call("ops", retry)
            #expect(ops.status == "200", "\(ops)")
            #expect(ops.body.contains(doomed.leaseID) && ops.body.contains(#""by":"ops""#), "\(ops.body)")
        }
    }

    /// Fails with what to do when Chromium or Python is missing.
    static func requireChromium() throws {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        func found(_ name: String) -> Bool { paths.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") } }
        guard found("chromium") || found("chromium-browser") else {
            throw ClusterTestFailure("chromium is not installed: run `apt-get install -y chromium` (scripts/test.sh does)")
        }
        guard found("python3") else { throw ClusterTestFailure("python3 is not installed (the browser driver is scripts/browser-dom.py)") }
    }

    struct Browser {
        let process: Process
        let output: String
        let errorPath: String

        func errors() -> String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

        /// Waits for the driver to exit; its status and the DOM it printed.
        func finish(timeout: Duration) async throws -> (Int32, String) {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                guard ContinuousClock.now < deadline else {
                    process.terminate()
                    process.waitUntilExit()
                    throw ClusterTestFailure("browser-dom.py did not finish within \(timeout): \(errors())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
    }

    /// Starts `scripts/browser-dom.py` on `url`: it prints the DOM (to
    /// `output`) once `until` holds; with `click`, it then clicks that
    /// element; with `thenWaitFor`, it touches `afterFile` (if given) and
    /// prints once `thenWaitFor` holds too.
    static func startBrowser(_ url: String, until: String, click: String? = nil, afterFile: String? = nil, thenWaitFor: String? = nil,
                             insecure: Bool, output: String) throws -> Browser {
        var arguments = [script, url, "--until", until, "--timeout", "50"]
        if let click { arguments += ["--click", click] }
        if let afterFile { arguments += ["--after-file", afterFile] }
        if let thenWaitFor { arguments += ["--then-wait-for", thenWaitFor] }
        if insecure { arguments.append("--ignore-certificate-errors") }
        let errorPath = output + ".stderr"
        FileManager.default.createFile(atPath: output, contents: nil)
        FileManager.default.createFile(atPath: errorPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardInput = FileHandle.nullDevice
        // Files, not pipes: a pipe nobody reads would fill up and block the driver.
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        try process.run()
        return Browser(process: process, output: output, errorPath: errorPath)
    }
}
