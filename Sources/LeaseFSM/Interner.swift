/// Shared copies of the values many leases repeat: service ids, cleanup
/// specs (and so their endpoints) and metadata. A lease built from a command
/// gets its own copy of each string from the decoder; interning makes every
/// lease of a service point at one copy instead.
///
/// Invisible to behaviour: interned values are equal to the originals, so
/// the state, its equality and its snapshots are the same with or without.
/// Bounded: a table that reaches ``maxEntries`` is emptied and starts over
/// (leases keep the copies they hold), so unique values cannot make it grow
/// without end.
struct Interner: Sendable {
    /// Entries per table before it starts over.
    static let maxEntries = 4096
    /// Metadata larger than this (keys and values, UTF-8) is kept as is.
    static let maxMetadataBytes = 1024

    private var strings: Set<String> = []
    private var specs: [CleanupSpec: Box<CleanupSpec>] = [:]
    private var metadata: Set<[String: String]> = []

    /// The shared copy of `string`. Strings of up to 15 UTF-8 bytes are
    /// stored inline by Swift and need no sharing.
    mutating func string(_ string: String) -> String {
        guard string.utf8.count > 15 else { return string }
        if strings.count >= Self.maxEntries, !strings.contains(string) { strings.removeAll() }
        return strings.insert(string).memberAfterInsert
    }

    /// The shared box holding `spec`.
    mutating func spec(_ spec: CleanupSpec) -> Box<CleanupSpec> {
        if let box = specs[spec] { return box }
        if specs.count >= Self.maxEntries { specs.removeAll() }
        let box = Box(CleanupSpec(
            httpEndpoint: string(spec.httpEndpoint), grpcEndpoint: string(spec.grpcEndpoint),
            payload: string(spec.payload), maxRetries: spec.maxRetries, retryDelaySeconds: spec.retryDelaySeconds))
        specs[spec] = box
        return box
    }

    /// The shared copy of `box`'s spec.
    mutating func spec(_ box: Box<CleanupSpec>) -> Box<CleanupSpec> {
        if let shared = specs[box.value] { return shared }
        if specs.count >= Self.maxEntries { specs.removeAll() }
        specs[box.value] = box
        return box
    }

    /// The shared copy of `metadata` (empty metadata costs nothing anyway).
    mutating func metadata(_ value: [String: String]) -> [String: String] {
        guard !value.isEmpty else { return value }
        var bytes = 0
        for (k, v) in value {
            bytes += k.utf8.count + v.utf8.count
            if bytes > Self.maxMetadataBytes { return value }
        }
        if metadata.count >= Self.maxEntries, !metadata.contains(value) { metadata.removeAll() }
        return metadata.insert(value).memberAfterInsert
    }
}
