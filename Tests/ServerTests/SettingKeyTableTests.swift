import Logging
@testable import Server
import Testing

@Suite("The table of settings")
struct SettingKeyTableTests {
    @Test("every literal default in the table is the default the code really uses")
    func defaultsMatchTheCode() throws {
        let config = try SidecarConfig(environment: [:])
        for key in SettingKey.all {
            guard case .value(let documented) = key.defaultValue, let effective = key.effective else { continue }
            #expect(effective(config) == documented, "\(key.environmentName): the table says \(documented), the code uses \(effective(config))")
        }
    }

    @Test("GC_CLEANUP_MAX_CONCURRENCY is documented with its real default, 256")
    func cleanupConcurrencyDefault() throws {
        let key = try #require(SettingKey.environment(named: "GC_CLEANUP_MAX_CONCURRENCY"))
        #expect(key.defaultValue == .value("256"))
        #expect(try SidecarConfig(environment: [:]).cleanupLimits.maxConcurrency == 256)
    }

    @Test("names are unique: variables, aliases, flags")
    func uniqueNames() {
        let variables = SettingKey.all.flatMap { [$0.environmentName] + $0.environmentAliases }
        #expect(Set(variables).count == variables.count)
        let flags = SettingKey.all.map(\.flagName)
        #expect(Set(flags).count == flags.count)
    }

    @Test("every setting the code keeps reads back what was set", arguments: [
        ("GC_CLEANUP_MAX_CONCURRENCY", "64"), ("GC_CLEANUP_ENDPOINT_RATE", "0"), ("GC_REAP_BATCH_SIZE", "7"),
        ("GC_PEERS", "n1=10.0.0.1:50052,n2=10.0.0.2:50052"), ("GC_CLEANUP_ALLOW", "files.internal,10.0.0.0/8"),
        ("GC_LOG_FORMAT", "json"), ("GC_CLUSTER_STATE", "existing"), ("GC_EVENT_HISTORY_BYTES", "1024"), ("GC_CLEANUP_CLAIM_SECONDS", "45"),
    ])
    func effectiveReadsBack(variable: String, value: String) throws {
        let key = try #require(SettingKey.environment(named: variable))
        let config = try SidecarConfig(environment: [variable: value])
        #expect(key.effective?(config) == value)
    }

    @Test("flag names derive from the variable: GC_ dropped, lower case, dashes")
    func flagNames() {
        #expect(SettingKey.flag(named: "cleanup-max-concurrency")?.environmentName == "GC_CLEANUP_MAX_CONCURRENCY")
        #expect(SettingKey.flag(named: "database-url")?.environmentName == "DATABASE_URL")
        #expect(SettingKey.flag(named: "config")?.environmentName == "GC_CONFIG_FILE")
        #expect(SettingKey.environment(named: "RUST_LOG")?.environmentName == "GC_LOG_LEVEL")
    }
}
