/// Finds names that look like settings but are not (a misspelled `GC_*`
/// variable, an unknown config-file key) and the setting meant.
public enum UnknownSettings {
    /// `GC_*` variables that are not settings of the node but belong to the
    /// repository's scripts, tests and packaging (`GC_BUILD_COMMIT`, which
    /// `gc_build_info` reports); they are not warned about.
    static let toolingVariables: Set<String> = [
        "GC_BUILD", "GC_BUILD_COMMIT", "GC_BIN_DIR", "GC_CLUSTER_DIR", "GC_KEEP_CLUSTER_DIR", "GC_SIDECAR_BIN", "GC_SIDECAR_BINARY",
        "GC_PROTO", "GC_BENCH_CONCURRENCY", "GC_CLUSTER_START_TIMEOUT", "GC_CLUSTER_STOP_TIMEOUT",
    ]
    static let toolingPrefixes = ["GC_TEST_", "GC_MEASURE_"]

    /// One warning per `GC_*` variable that is not a setting, sorted by name:
    /// "GC_CLEANUP_MAX_CONCURENCY is not a setting; did you mean GC_CLEANUP_MAX_CONCURRENCY?".
    public static func environmentWarnings(_ environment: [String: String]) -> [String] {
        let known = SettingKey.all.map(\.environmentName)
        return environment.keys.sorted().compactMap { name in
            guard name.hasPrefix("GC_"), SettingKey.environment(named: name) == nil,
                  !toolingVariables.contains(name), !toolingPrefixes.contains(where: { name.hasPrefix($0) })
            else { return nil }
            return warning(name, suggestion: nearest(to: name, among: known))
        }
    }

    /// "NAME is not a setting; did you mean X?" (or "…; `gc-sidecar serve --help` lists them").
    static func warning(_ name: String, suggestion: String?) -> String {
        if let suggestion {
            return "\(name) is not a setting; did you mean \(suggestion)?"
        }
        return "\(name) is not a setting (gc-sidecar serve --help lists them)"
    }

    /// The candidate closest to `name` by edit distance, if it is close
    /// enough to be a plausible misspelling (at most a third of its length).
    public static func nearest(to name: String, among candidates: [String]) -> String? {
        let target = Array(name.lowercased())
        var best: (String, Int)?
        for candidate in candidates {
            let d = editDistance(target, Array(candidate.lowercased()))
            if d < (best?.1 ?? .max) { best = (candidate, d) }
        }
        guard let best, best.1 <= max(2, target.count / 3) else { return nil }
        return best.0
    }

    /// Levenshtein distance (insertions, deletions, substitutions).
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
