import Prometheus

/// Metric families made with their `# HELP` text always given.
extension PrometheusCollectorRegistry {
    static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The counter `name{labels}`, its family described by `help`.
    func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: Self.describe(name, help), labels: labels)
    }

    /// The gauge `name{labels}`, its family described by `help`.
    func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: Self.describe(name, help), labels: labels)
    }

    /// The duration histogram `name{labels}`, its family described by `help`.
    func durationHistogram(_ name: String, labels: [(String, String)] = [], buckets: [Duration], help: String) -> DurationHistogram {
        makeDurationHistogram(descriptor: Self.describe(name, help), labels: labels, buckets: buckets)
    }
}
