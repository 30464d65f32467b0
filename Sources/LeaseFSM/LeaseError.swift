/// Why a command was refused. Every refusal changes nothing.
///
/// The code maps one-to-one onto a gRPC status; the message says what the
/// caller should fix, naming the field where there is one.
public struct LeaseError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Hashable, Sendable {
            case invalidArgument, notFound, permissionDenied, failedPrecondition, resourceExhausted, alreadyExists
        }
        let wrapped: Wrapped

        /// The request itself is malformed (a field is empty, too long, out of range).
        public static let invalidArgument = Code(wrapped: .invalidArgument)
        /// The lease (or job) does not exist.
        public static let notFound = Code(wrapped: .notFound)
        /// The lease belongs to another service.
        public static let permissionDenied = Code(wrapped: .permissionDenied)
        /// The lease is not in a state that allows the operation (e.g. expired).
        public static let failedPrecondition = Code(wrapped: .failedPrecondition)
        /// A quota (leases per service) would be exceeded.
        public static let resourceExhausted = Code(wrapped: .resourceExhausted)
        /// The id is already taken.
        public static let alreadyExists = Code(wrapped: .alreadyExists)

        /// The gRPC status name, e.g. `NOT_FOUND`.
        public var description: String {
            switch wrapped {
            case .invalidArgument: "INVALID_ARGUMENT"
            case .notFound: "NOT_FOUND"
            case .permissionDenied: "PERMISSION_DENIED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .alreadyExists: "ALREADY_EXISTS"
            }
        }
    }

    public var code: Code
    public var message: String
    /// The request field the error is about, if any (e.g. `object_id`).
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(code): \(message)" }

    static func invalid(_ field: String, _ message: String) -> LeaseError {
        LeaseError(.invalidArgument, "\(field): \(message)", field: field)
    }
}
