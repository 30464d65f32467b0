import Foundation
import Glibc
import Synchronization

/// Progress of a long command, on stderr only (stdout holds the result).
///
/// On a terminal, the line is rewritten in place and appears only once the
/// command has run for a second (quick commands stay quiet); with
/// `--progress` and stderr not a terminal (a log file, a test), every update
/// is its own line, at once. Disabled, it prints nothing.
final class ProgressReporter: Sendable {
    private struct State {
        var wroteInPlace = false
    }

    let enabled: Bool
    private let inPlace: Bool
    private let started = ContinuousClock.now
    private let state = Mutex(State())

    /// Whether stderr is a terminal.
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    init(enabled: Bool) {
        self.enabled = enabled
        inPlace = Self.stderrIsTerminal
    }

    /// Shows `text` as the current progress.
    func update(_ text: String) {
        guard enabled else { return }
        if inPlace {
            guard ContinuousClock.now - started >= .seconds(1) else { return }
            state.withLock { $0.wroteInPlace = true }
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
        } else {
            Diagnostics.write(text)
        }
    }

    /// Ends the progress line (on a terminal) before the result is printed.
    func finish() {
        guard enabled, inPlace, state.withLock({ $0.wroteInPlace }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
