import Logging
@testable import Server
import Testing

@Suite("The effective configuration logged at start")
struct EffectiveConfigurationTests {
    @Test("every setting is listed with its value in effect and where it came from")
    func everySetting() throws {
        let loaded = try SidecarConfig.load(
            arguments: ["--cleanup-max-concurrency", "64"],
            environment: ["GC_NODE_ID": "n3", "GC_SERVER_HOST": "127.0.0.1"]
        )
        let entries = Dictionary(uniqueKeysWithValues: loaded.effective.entries.map { ($0.name, $0) })
        #expect(entries.count == SettingKey.all.count)
        #expect(entries["GC_CLEANUP_MAX_CONCURRENCY"]?.value == "64")
        #expect(entries["GC_CLEANUP_MAX_CONCURRENCY"]?.source == .flag)
        #expect(entries["GC_NODE_ID"]?.source == .environment)
        #expect(entries["GC_DATA_DIR"]?.value == "./gc-data/n3", "derived defaults show their value")
        #expect(entries["GC_METRICS_HOST"]?.value == "127.0.0.1")
        #expect(entries["GC_SERVER_PORT"]?.source == .default)
        guard case .dictionary(let settings) = loaded.effective.metadata["settings"],
              case .dictionary(let from) = loaded.effective.metadata["from"] else {
            Issue.record("metadata has settings and from dictionaries")
            return
        }
        #expect(settings["GC_CLEANUP_MAX_CONCURRENCY"] == "64")
        #expect(from.keys.sorted() == ["GC_CLEANUP_MAX_CONCURRENCY", "GC_NODE_ID", "GC_SERVER_HOST"])
    }

    @Test("secret values are redacted; a URL keeps all but its password; file paths are shown")
    func redaction() throws {
        let loaded = try SidecarConfig.load(arguments: [], environment: [
            "DATABASE_URL": "postgres://gc:hunter2@db.internal:5432/gc?sslmode=require",
            "GC_TLS_CERT_FILE": "/etc/gc/tls.pem", "GC_TLS_KEY_FILE": "/etc/gc/tls.key",
        ])
        let rendered = loaded.effective.rendered()
        #expect(!rendered.contains("hunter2"))
        #expect(rendered.contains("DATABASE_URL=postgres://gc:<redacted>@db.internal:5432/gc?sslmode=require  # env"))
        #expect(rendered.contains("GC_TLS_KEY_FILE=/etc/gc/tls.key  # env"))
        #expect(!"\(loaded.effective.metadata)".contains("hunter2"))
        #expect(EffectiveConfiguration.redact("s3cr3t-token", secret: true) == "<redacted>")
        #expect(EffectiveConfiguration.redact("none", secret: true) == "none")
        #expect(EffectiveConfiguration.redact("https://user:pw@host/x", secret: false) == "https://user:<redacted>@host/x")
        #expect(EffectiveConfiguration.redact("https://host/x@y", secret: false) == "https://host/x@y")
    }
}
