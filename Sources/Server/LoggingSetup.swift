import Logging

/// Bootstraps swift-log once per process: human-readable lines on stderr
/// with structured metadata, at `level`.
public enum LoggingSetup {
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
