import Foundation
import Logging
@testable import Server
import Synchronization
import Testing

@Suite("GC_LOG_FORMAT=json")
struct JSONLogHandlerTests {
    private final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    private func logger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "gc-sidecar.test") { label in
            var handler = JSONLogHandler(label: label) { lines.append($0) }
            handler.logLevel = level
            return handler
        }
        logger[metadataKey: "node"] = "n1"
        return logger
    }

    private func object(_ line: String) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(parsed as? [String: Any])
    }

    @Test("one JSON object per line: timestamp, level, label, message, metadata")
    func fields() throws {
        let lines = Lines()
        logger(lines).info("starting", metadata: ["grpc": "0.0.0.0:50051", "peers": ["n1", "n2"], "limits": ["max": "5"]])
        let line = try #require(lines.all.first)
        #expect(lines.all.count == 1)
        #expect(line.hasSuffix("}\n") && line.dropLast().firstIndex(of: "\n") == nil)
        let o = try object(line)
        #expect(o["level"] as? String == "info")
        #expect(o["label"] as? String == "gc-sidecar.test")
        #expect(o["message"] as? String == "starting")
        let metadata = try #require(o["metadata"] as? [String: Any])
        #expect(metadata["node"] as? String == "n1", "the logger's own metadata")
        #expect(metadata["grpc"] as? String == "0.0.0.0:50051")
        #expect(metadata["peers"] as? [String] == ["n1", "n2"])
        #expect((metadata["limits"] as? [String: String]) == ["max": "5"])
        let timestamp = try #require(o["timestamp"] as? String)
        #expect(timestamp.count == 24 && timestamp.hasSuffix("Z"), "\(timestamp)")
    }

    @Test("quotes, backslashes, newlines and control characters are escaped; the line stays one line and parses back")
    func escaping() throws {
        let lines = Lines()
        let nasty = "say \"hi\"\\n\nnew line\ttab \u{01}bell \u{2028} ünïcødé 🚀"
        logger(lines).warning("\(nasty)", metadata: [nasty: "\(nasty)"])
        let line = try #require(lines.all.first)
        #expect(line.filter { $0 == "\n" }.count == 1)
        let o = try object(line)
        #expect(o["message"] as? String == nasty)
        #expect((o["metadata"] as? [String: Any])?[nasty] as? String == nasty)
        #expect(o["level"] as? String == "warning")
    }

    @Test("below the level nothing is written")
    func level() {
        let lines = Lines()
        let log = logger(lines, level: .warning)
        log.info("quiet")
        log.error("loud")
        #expect(lines.all.count == 1)
    }

    @Test("timestamps are UTC with milliseconds")
    func timestamp() {
        #expect(JSONLogHandler.timestamp(seconds: 0, milliseconds: 7) == "1970-01-01T00:00:00.007Z")
        #expect(JSONLogHandler.timestamp(seconds: 1_796_563_453, milliseconds: 123) == "2026-12-06T13:24:13.123Z")
    }

    @Test("GC_LOG_FORMAT accepts text and json only")
    func format() throws {
        #expect(try SidecarConfig(environment: [:]).logFormat == .text)
        #expect(try SidecarConfig(environment: ["GC_LOG_FORMAT": "JSON"]).logFormat == .json)
        #expect {
            _ = try SidecarConfig(environment: ["GC_LOG_FORMAT": "xml"])
        } throws: { error in
            (error as? SidecarConfig.Error)?.variable == "GC_LOG_FORMAT" && "\(error)".contains("'text' and 'json'")
        }
    }
}
