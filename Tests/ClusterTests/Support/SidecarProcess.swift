import Foundation
import Glibc
import Synchronization

/// One real `gc-sidecar` process on loopback, with its own ports, data
/// directory and log file.
final class SidecarProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched from the test task that owns this
    // object (start, kill, restart happen in sequence, never concurrently).
    let name: String
    let clientPort: Int
    let raftPort: Int
    let metricsPort: Int
    let dataDirectory: String
    let logPath: String
    private var environment: [String: String]
    private var process: Process?

    init(name: String, clientPort: Int, raftPort: Int, metricsPort: Int, directory: String, environment: [String: String]) {
        self.name = name
        self.clientPort = clientPort
        self.raftPort = raftPort
        self.metricsPort = metricsPort
        self.dataDirectory = "\(directory)/\(name)/data"
        self.logPath = "\(directory)/\(name).log"
        self.environment = environment
    }

    var endpoint: String { "127.0.0.1:\(clientPort)" }
    var isRunning: Bool { process?.isRunning ?? false }
    var pid: Int32? { process?.processIdentifier }

    /// Starts the process (appending to its log).
    func start() throws {
        precondition(process == nil || process?.isRunning == false, "\(name) is already running")
        let binary = try SidecarBinary.path()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["GC_NODE_ID"] = name
        env["GC_SERVER_HOST"] = "127.0.0.1"
        env["GC_SERVER_PORT"] = "\(clientPort)"
        env["GC_RAFT_PORT"] = "\(raftPort)"
        env["GC_METRICS_PORT"] = "\(metricsPort)"
        env["GC_DATA_DIR"] = dataDirectory
        process.environment = env
        // Appends: a restarted node's log keeps what its predecessor wrote.
        if !FileManager.default.fileExists(atPath: logPath) {
            FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
    }

    /// `kill -9`: no shutdown, no flush beyond what was already fsynced.
    func kill9() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Freezes the process (SIGSTOP): to the others it looks cut off.
    func pause() {
        if let pid { Glibc.kill(pid, SIGSTOP) }
    }

    /// SIGHUP: reload certificates and the authorization policy.
    func hangUp() {
        if let pid { Glibc.kill(pid, SIGHUP) }
    }

    /// Thaws a paused process (SIGCONT).
    func resume() {
        if let pid { Glibc.kill(pid, SIGCONT) }
    }

    /// SIGTERM and wait for exit.
    func stop() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
        process.terminate()
        process.waitUntilExit()
    }

    /// The last lines of the log, for failure messages.
    func logTail(_ lines: Int = 30) -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Finds the `gc-sidecar` executable built beside the tests.
enum SidecarBinary {
    static func path() throws -> String {
        if let override = ProcessInfo.processInfo.environment["GC_SIDECAR_BINARY"] { return override }
        return try path(of: "gc-sidecar")
    }

    /// A product built beside the tests (`gc-sidecar`, `gcctl`), or in
    /// `GC_TEST_BIN_DIR` when set (scripts/test.sh points it at the release
    /// build, so the real-process tests run the binaries users run).
    static func path(of product: String) throws -> String {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["GC_TEST_BIN_DIR"], !dir.isEmpty {
            let path = URL(fileURLWithPath: dir).appendingPathComponent(product).path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ClusterTestFailure("\(product) not found in GC_TEST_BIN_DIR=\(dir); build it there first")
            }
            return path
        }
        // The test bundle lives in the build directory beside the products.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent(product).path)
            dir.deleteLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/\(product)").path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ClusterTestFailure("\(product) binary not found (looked in \(candidates)); run `swift build` first or set GC_SIDECAR_BINARY")
        }
        return found
    }
}

/// Ports handed out by ``freePort()`` in this test process: never handed out
/// twice, so a node that is down keeps its ports for its restart.
private let handedOutPorts = Mutex<Set<Int>>([])

/// A TCP port on 127.0.0.1 that is free now, never handed out before in this
/// process, and below the kernel's ephemeral range (32768–60999 by default on
/// Linux), so neither outgoing connections nor other tests' `bind(:0)` can
/// take it between now and the node binding it.
func freePort() throws -> Int {
    let range = portRange
    for _ in 0..<1_000 {
        let candidate = Int.random(in: range)
        guard handedOutPorts.withLock({ $0.insert(candidate).inserted }) else { continue }
        if canBind(candidate) { return candidate }
    }
    throw ClusterTestFailure("no free port in \(range)")
}

/// 12,000 ports just below the ephemeral range the kernel reports.
private let portRange: Range<Int> = {
    let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
    let low = text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
    let top = max(low, 13_024)
    return (top - 12_000)..<top
}()

/// Whether 127.0.0.1:`port` can be bound right now.
private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
    }
}

struct ClusterTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
