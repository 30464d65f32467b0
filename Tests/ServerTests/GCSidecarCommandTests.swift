import Foundation
@testable import Server
import Testing

/// The real `gc-sidecar` binary's command line (built beside the tests, or
/// in `GC_TEST_BIN_DIR`).
@Suite("gc-sidecar --help, --version, config")
struct GCSidecarCommandTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func binary() throws -> String {
        if let dir = ProcessInfo.processInfo.environment["GC_TEST_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir).appendingPathComponent("gc-sidecar").path
        }
        var candidates: [String] = []
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("gc-sidecar").path)
            dir.deleteLastPathComponent()
        }
        candidates.append(ConfigDocsTests.root.appendingPathComponent(".build/debug/gc-sidecar").path)
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "gc-sidecar not built (looked in \(candidates)); run swift build --product gc-sidecar")
    }

    /// Runs gc-sidecar with `arguments` and only `environment` (plus PATH);
    /// every command here ends by itself (none starts the node).
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test("--version prints the version and exits 0")
    func version() throws {
        let r = try run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == SidecarVersion.current)
    }

    @Test("--help names the subcommands; serve --help lists every setting's flag and variable")
    func help() throws {
        let root = try run(["--help"])
        #expect(root.status == 0)
        #expect(root.stdout.contains("serve") && root.stdout.contains("config"))
        let serve = try run(["serve", "--help"])
        #expect(serve.status == 0)
        for key in SettingKey.all {
            #expect(serve.stdout.contains(key.flag), "\(key.flag) missing from serve --help")
            #expect(serve.stdout.contains(key.environmentName), "\(key.environmentName) missing from serve --help")
        }
    }

    @Test("config show: flags without the serve subcommand, precedence, warnings on stderr, errors exit 2")
    func configShow() throws {
        let ok = try run(["config", "show", "--server-port", "6001", "--cleanup-max-concurrency=64"],
                         environment: ["GC_SERVER_PORT": "7001", "GC_CLEANUP_MAX_CONCURENCY": "5", "DATABASE_URL": "postgres://u:pw@db/gc"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("GC_SERVER_PORT=6001  # flag"))
        #expect(ok.stdout.contains("GC_CLEANUP_MAX_CONCURRENCY=64  # flag"))
        #expect(ok.stdout.contains("DATABASE_URL=postgres://u:<redacted>@db/gc  # env"))
        #expect(!ok.stdout.contains("pw@"))
        #expect(ok.stderr.contains("GC_CLEANUP_MAX_CONCURENCY is not a setting; did you mean GC_CLEANUP_MAX_CONCURRENCY?"))

        let typo = try run(["config", "show", "--cleanup-max-concurency", "5"])
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("did you mean --cleanup-max-concurrency?"))

        let bad = try run(["config", "show"], environment: ["GC_SERVER_PORT": "70000"])
        #expect(bad.status == 2)
        #expect(bad.stderr == "gc-sidecar: invalid configuration: GC_SERVER_PORT: '70000' is not a port: expected an integer in 0...65535 (0 picks a free port)\n")
    }

    @Test("a bad setting given to the default command stops it before it starts, exit 2")
    func defaultCommandRefusesBadSetting() throws {
        let r = try run(["--server-port", "abc"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("GC_SERVER_PORT (set by --server-port)"))
    }

    @Test("config markdown and env-example print the generated docs")
    func docs() throws {
        #expect(try run(["config", "markdown"]).stdout == ConfigDocs.markdown())
        #expect(try run(["config", "env-example"]).stdout == ConfigDocs.envExample())
    }

    @Test("config show --config reads the YAML file below the environment, and warns about an unknown key with its line")
    func configFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gc-config-\(UInt32.random(in: 0...UInt32.max)).yaml").path
        try "cleanup-max-concurrency: 32\nserver-port: 6100\nreap_batch_sise: 3\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try run(["config", "show", "--config", path], environment: ["GC_SERVER_PORT": "7100"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("GC_CLEANUP_MAX_CONCURRENCY=32  # file"))
        #expect(r.stdout.contains("GC_SERVER_PORT=7100  # env"))
        #expect(r.stderr.contains("\(path):3: 'reap_batch_sise' is not a setting; did you mean 'reap-batch-size'?"))
    }

    @Test("the node logs its effective configuration once at start, as JSON with GC_LOG_FORMAT=json, secrets redacted")
    func effectiveConfigurationLoggedOnce() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("gc-start-\(UInt32.random(in: 0...UInt32.max)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = ["--cleanup-max-concurrency", "48"]
        process.environment = [
            "GC_LOG_FORMAT": "json", "GC_STORAGE_BACKEND": "memory", "GC_SERVER_HOST": "127.0.0.1",
            "GC_SERVER_PORT": "0", "GC_METRICS_PORT": "0", "GC_RAFT_PORT": "0",
            "DATABASE_URL": "postgres://gc:hunter2@db/gc",
        ]
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
        }
        // Bounded polling: the line is written before the node starts serving.
        let deadline = Date().addingTimeInterval(20)
        var lines: [String] = []
        while Date() < deadline {
            lines = (try String(contentsOf: log, encoding: .utf8)).split(separator: "\n").map(String.init)
            if lines.contains(where: { $0.contains("raft role changed") }) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let configurationLines = lines.filter { $0.contains("\"message\":\"configuration\"") }
        #expect(configurationLines.count == 1, "\(lines)")
        let line = try #require(configurationLines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let metadata = try #require(object["metadata"] as? [String: Any])
        let settings = try #require(metadata["settings"] as? [String: String])
        #expect(settings["GC_CLEANUP_MAX_CONCURRENCY"] == "48")
        #expect(settings["DATABASE_URL"] == "postgres://gc:<redacted>@db/gc")
        #expect((metadata["from"] as? [String: String])?["GC_CLEANUP_MAX_CONCURRENCY"] == "flag")
        #expect(!lines.joined().contains("hunter2"))
    }
}
