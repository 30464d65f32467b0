import Foundation
import Prometheus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The standard Prometheus process metrics (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`),
/// read from Linux `/proc/self` on every scrape. Elsewhere they stay 0.
final class ProcessMetrics: Sendable {
    private let cpu: Counter
    private let resident: Gauge
    private let virtual: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    /// CPU seconds already added to `cpu` (the counter only goes up).
    private let cpuCounted = Mutex(0.0)
    private let ticksPerSecond: Double
    private let pageSize: Double

    init(registry: PrometheusCollectorRegistry) {
        cpu = registry.counter("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.")
        resident = registry.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.")
        virtual = registry.gauge("process_virtual_memory_bytes", help: "Virtual memory size in bytes.")
        openFDs = registry.gauge("process_open_fds", help: "Number of open file descriptors.")
        maxFDs = registry.gauge("process_max_fds", help: "Maximum number of open file descriptors.")
        let start = registry.gauge("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.")
        #if os(Linux)
        ticksPerSecond = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        pageSize = Double(max(1, sysconf(Int32(_SC_PAGESIZE))))
        if let stat = Self.readStat(), let bootTime = Self.bootTime() {
            start.set(bootTime + stat.startTicks / ticksPerSecond)
        }
        #else
        ticksPerSecond = 100
        pageSize = 4096
        #endif
        refresh()
    }

    /// Reads `/proc/self` now and updates every process metric.
    func refresh() {
        #if os(Linux)
        if let stat = Self.readStat() {
            let seconds = (stat.userTicks + stat.systemTicks) / ticksPerSecond
            let delta = cpuCounted.withLock { counted -> Double in
                let delta = seconds - counted
                if delta > 0 { counted = seconds }
                return delta
            }
            if delta > 0 { cpu.increment(by: delta) }
            resident.set(stat.residentPages * pageSize)
            virtual.set(stat.virtualBytes)
        }
        if let count = Self.openDescriptorCount() { openFDs.set(Double(count)) }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            maxFDs.set(limit.rlim_cur == rlim_t.max ? -1.0 : Double(limit.rlim_cur))
        }
        #endif
    }

    /// The fields of `/proc/self/stat` this reads.
    struct Stat: Equatable {
        var userTicks: Double
        var systemTicks: Double
        var startTicks: Double
        var virtualBytes: Double
        var residentPages: Double
    }

    static func readStat() -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return parseStat(text)
    }

    /// Parses `/proc/<pid>/stat`: the fields after the command name (which
    /// is in parentheses and may hold spaces) start with field 3, `state`.
    static func parseStat(_ text: String) -> Stat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // Field n (1-based, as in proc(5)) is fields[n - 3].
        func field(_ n: Int) -> Double? {
            n - 3 < fields.count ? Double(fields[n - 3].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24)
        else { return nil }
        return Stat(userTicks: utime, systemTicks: stime, startTicks: start, virtualBytes: vsize, residentPages: rss)
    }

    /// The `btime` line of `/proc/stat`: when the machine booted (epoch seconds).
    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Entries of `/proc/self/fd`, less the one the listing itself opens.
    static func openDescriptorCount() -> Int? {
        #if os(Linux)
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return max(0, count - 1)
        #else
        return nil
        #endif
    }
}
