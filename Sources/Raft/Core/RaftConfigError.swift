/// A configuration value the core cannot work with.
public enum RaftConfigError: Error, Sendable, Equatable {
    case invalid(String)
}
