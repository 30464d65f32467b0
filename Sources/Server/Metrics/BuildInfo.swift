import Foundation

/// What `gc_build_info{version,commit}` reports about the running binary.
///
/// The version is ``SidecarVersion/current``. The commit comes from
/// `GC_BUILD_COMMIT`, which the packaging sets (scripts/run.sh exports the
/// work tree's short commit; deploy/Dockerfile bakes its `GC_COMMIT` build
/// argument into the image); without it, or when it is not a plain
/// identifier, it is `unknown`.
public struct BuildInfo: Sendable, Equatable {
    /// The release version, e.g. `0.1.0`.
    public var version: String
    /// The source commit (short hash), or `unknown`.
    public var commit: String

    /// Names an explicit build (tests).
    public init(version: String, commit: String) {
        self.version = version
        self.commit = commit
    }

    /// The running build: ``SidecarVersion/current`` and `GC_BUILD_COMMIT`.
    public static var current: BuildInfo {
        BuildInfo(version: SidecarVersion.current,
                  commit: commit(from: ProcessInfo.processInfo.environment["GC_BUILD_COMMIT"]))
    }

    /// `value` when it looks like a commit (1 to 64 letters, digits, `-`,
    /// `.` or `_`, e.g. `a1b2c3d` or `a1b2c3d-dirty`), else `unknown`.
    public static func commit(from value: String?) -> String {
        guard let value, !value.isEmpty, value.utf8.count <= 64,
              value.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                      || byte == 0x2D || byte == 0x2E || byte == 0x5F
              })
        else { return "unknown" }
        return value
    }
}
