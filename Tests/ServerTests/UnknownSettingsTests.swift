@testable import Server
import Testing

@Suite("Misspelled settings")
struct UnknownSettingsTests {
    @Test("an unknown GC_ variable is warned about with the nearest setting")
    func misspelledVariable() {
        #expect(UnknownSettings.environmentWarnings(["GC_CLEANUP_MAX_CONCURENCY": "5"])
            == ["GC_CLEANUP_MAX_CONCURENCY is not a setting; did you mean GC_CLEANUP_MAX_CONCURRENCY?"])
        #expect(UnknownSettings.environmentWarnings(["GC_SERVR_PORT": "1"]) == ["GC_SERVR_PORT is not a setting; did you mean GC_SERVER_PORT?"])
    }

    @Test("a name far from every setting gets no guess")
    func noGuess() {
        #expect(UnknownSettings.environmentWarnings(["GC_FAVOURITE_COLOUR": "blue"]) == ["GC_FAVOURITE_COLOUR is not a setting (gc-sidecar serve --help lists them)"])
    }

    @Test("settings, their aliases, other programs' variables and the repository's tooling variables are not warned about")
    func noFalseAlarms() {
        #expect(UnknownSettings.environmentWarnings([
            "GC_SERVER_PORT": "1", "RUST_LOG": "info", "LOG_LEVEL": "info", "DATABASE_URL": "x", "PATH": "/bin",
            "GC_TEST_BIN_DIR": "/x", "GC_BUILD": "debug", "GC_CLUSTER_START_TIMEOUT": "30", "GC_CONFIG_FILE": "/x", "GC_LOG_FORMAT": "json",
        ]).isEmpty)
    }

    @Test("the warnings reach the loaded configuration, and start-up goes on")
    func warnNotFail() throws {
        let loaded = try SidecarConfig.load(arguments: [], environment: ["GC_CLEANUP_MAX_CONCURENCY": "5"])
        #expect(loaded.warnings == ["GC_CLEANUP_MAX_CONCURENCY is not a setting; did you mean GC_CLEANUP_MAX_CONCURRENCY?"])
        #expect(loaded.config.cleanupLimits.maxConcurrency == 256)
    }

    @Test("edit distance counts insertions, deletions and substitutions")
    func editDistance() {
        #expect(UnknownSettings.editDistance(Array("kitten"), Array("sitting")) == 3)
        #expect(UnknownSettings.editDistance(Array(""), Array("abc")) == 3)
        #expect(UnknownSettings.editDistance(Array("same"), Array("same")) == 0)
    }
}
