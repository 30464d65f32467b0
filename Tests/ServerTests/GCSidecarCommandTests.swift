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
}
