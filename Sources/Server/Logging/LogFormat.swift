import Logging

/// How `gc-sidecar` writes its log lines (`GC_LOG_FORMAT`).
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    /// swift-log's readable line with the metadata in brackets.
    case text
    /// One JSON object per line (``JSONLogHandler``), for log shippers.
    case json
}

extension LoggingSetup {
    /// Bootstraps swift-log once per process: lines on stderr at `level`, as
    /// readable text or as one JSON object per line.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        switch format {
        case .text:
            bootstrap(level: level)
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
