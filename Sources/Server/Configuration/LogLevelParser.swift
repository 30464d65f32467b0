import Logging

/// Reads the log level from `GC_LOG_LEVEL`, else `LOG_LEVEL`, else `RUST_LOG`.
///
/// Each accepts a bare level (`trace`, `debug`, `info`, `notice`, `warn`,
/// `warning`, `error`, `critical`, `off`); `RUST_LOG` also accepts its
/// directive syntax (`distributed_gc_sidecar=debug,hyper=info`), where the
/// directive for this program wins, then a bare level, then the lowest level named.
enum LogLevelParser {
    static let programTargets: Set<String> = ["distributed_gc_sidecar", "gc_sidecar", "gc-sidecar"]

    static func level(from env: [String: String]) throws(SidecarConfig.Error) -> Logger.Level {
        for key in ["GC_LOG_LEVEL", "LOG_LEVEL", "RUST_LOG"] {
            guard let raw = env[key]?.trimmingWhitespace(), !raw.isEmpty else { continue }
            if let level = parse(raw) { return level }
            throw SidecarConfig.Error(variable: key, message: "'\(raw.prefix(60))' is not a log level: use trace, debug, info, notice, warn, error or critical (RUST_LOG also accepts target=level lists)")
        }
        return .info
    }

    static func parse(_ raw: String) -> Logger.Level? {
        if let level = bare(raw) { return level }
        var bareLevel: Logger.Level?
        var programLevel: Logger.Level?
        var lowest: Logger.Level?
        for directive in raw.split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            if parts.count == 1 {
                guard let level = bare(parts[0]) else { return nil }
                bareLevel = level
            } else {
                guard let level = bare(parts[1]) else { return nil }
                if programTargets.contains(parts[0].split(separator: ":").first.map(String.init) ?? "") {
                    programLevel = level
                }
                lowest = min(lowest ?? level, level)
            }
        }
        return programLevel ?? bareLevel ?? lowest
    }

    private static func bare(_ s: String) -> Logger.Level? {
        switch s.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "error": .error
        case "critical", "off": .critical
        default: nil
        }
    }
}
