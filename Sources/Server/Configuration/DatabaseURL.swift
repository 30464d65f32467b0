import Foundation

/// `DATABASE_URL` of `GC_STORAGE_BACKEND=postgres`, parsed: where the
/// database is, who logs in, and how TLS is used.
///
/// Accepts libpq's URL form,
/// `postgresql://user:password@host:port/database?sslmode=require` (or
/// `postgres://`), with percent-encoded parts and these parameters:
///
/// - `sslmode`: `disable`, `prefer` (the default, as in libpq: TLS when the
///   server offers it, certificate not checked), `require` (TLS, certificate
///   not checked unless `sslrootcert` is given, as in libpq), `verify-ca`
///   (TLS, certificate chains to `sslrootcert` or the system's roots) or
///   `verify-full` (also: the certificate names the host).
/// - `sslrootcert`: a PEM file of CAs, or `system` for the system's roots.
/// - `sslcert` and `sslkey`: a client certificate and its key (PEM), both or
///   neither.
/// - `connect_timeout`: seconds a connection attempt may take (default 10).
/// - `application_name`: shown in `pg_stat_activity`.
/// - `host`: a unix socket directory (starts with `/`), instead of a host
///   in the authority.
///
/// The password is never part of ``description`` (nor of any error this
/// type throws): it prints as `<redacted>`.
public struct DatabaseURL: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// How TLS is used (libpq's `sslmode`).
    public enum SSLMode: String, Hashable, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"

        /// Whether the connection fails when the server does not offer TLS.
        public var requiresTLS: Bool { self != .disable && self != .prefer }
    }

    /// Host name or IP address (`127.0.0.1`, `::1`, `db.internal`); empty
    /// when ``unixSocketDirectory`` is set.
    public var host: String
    /// TCP port, or the socket file's number with ``unixSocketDirectory`` (default 5432).
    public var port: Int
    /// The directory of the server's unix socket (`?host=/var/run/postgresql`).
    public var unixSocketDirectory: String?
    public var user: String
    /// Never logged: ``description`` shows `<redacted>`.
    public var password: String?
    /// The database; nil means the server's default (the user's name).
    public var database: String?
    public var sslMode: SSLMode
    /// A PEM file of CA certificates, or `system` (the system's roots).
    public var sslRootCert: String?
    /// A PEM client certificate chain, used with ``sslKey``.
    public var sslCert: String?
    /// The PEM private key of ``sslCert``.
    public var sslKey: String?
    /// Seconds one connection attempt may take.
    public var connectTimeoutSeconds: Int
    public var applicationName: String?

    /// The unix socket file when ``unixSocketDirectory`` is set (`DIR/.s.PGSQL.PORT`).
    public var unixSocketPath: String? {
        unixSocketDirectory.map { "\($0)/.s.PGSQL.\(port)" }
    }

    /// Whether the server's certificate chain is checked (against
    /// ``sslRootCert`` or the system's roots): `verify-ca`, `verify-full`,
    /// and `require` with an `sslrootcert` (libpq's rule).
    public var verifiesCertificate: Bool {
        switch sslMode {
        case .disable, .prefer: false
        case .require: sslRootCert != nil
        case .verifyCA, .verifyFull: true
        }
    }

    /// Whether the certificate must also name ``host`` (`verify-full`).
    public var verifiesHostName: Bool { sslMode == .verifyFull }

    /// The parameters `DATABASE_URL` may carry.
    public static let parameters = ["sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "host"]

    /// An example to show in messages.
    static let example = "postgresql://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require"

    /// Parses `text`.
    ///
    /// - Parameter variable: the setting named in errors.
    /// - Throws: ``SidecarConfig/Error`` naming `variable` and what to fix;
    ///   its message never contains the password.
    public init(parsing text: String, variable: String = "DATABASE_URL") throws(SidecarConfig.Error) {
        func fail(_ message: String) -> SidecarConfig.Error {
            .init(variable: variable, message: message)
        }
        func decode(_ part: Substring, _ what: String) throws(SidecarConfig.Error) -> String {
            guard let decoded = String(part).removingPercentEncoding else {
                throw fail("the \(what) has a malformed %-escape (write a literal '%' as %25)")
            }
            return decoded
        }

        let trimmed = text.trimmingWhitespace()
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw fail("not a URL: expected \(Self.example)")
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "postgresql" || scheme == "postgres" else {
            throw fail("the scheme '\(scheme.prefix(20))' is not postgresql:// or postgres:// (expected \(Self.example))")
        }
        var rest = trimmed[schemeEnd.upperBound...]
        guard !rest.contains("#") else {
            throw fail("a URL fragment ('#') is not allowed; percent-encode a '#' in the password as %23")
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring = ""
        // The authority ends at the first '/' after the last '@' (a password
        // may hold a '/'; percent-encoding it is still wise).
        let authorityStart = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        if let slash = rest[authorityStart...].firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var hostPort = rest
        var user = ""
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            hostPort = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try decode(userInfo[..<colon], "user name")
                password = try decode(userInfo[userInfo.index(after: colon)...], "password")
            } else {
                user = try decode(userInfo, "user name")
            }
        }
        guard !user.isEmpty else {
            throw fail("no user name: expected \(Self.example)")
        }
        guard !hostPort.contains(",") else {
            throw fail("several hosts are not supported: name one host (a load balancer or the primary)")
        }

        var host = ""
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw fail("'\(hostPort.prefix(60))' has no closing ']' for its IPv6 address")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("'\(hostPort.prefix(60))' is not [address]:port") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = try decode(hostPort[..<colon], "host")
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = try decode(hostPort, "host")
        }
        var port = 5432
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw fail("the port '\(portText.prefix(20))' is not a number in 1...65535")
            }
            port = p
        }
        guard host.utf8.count <= 253, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.:_%".contains($0)) }) else {
            throw fail("'\(host.prefix(60))' is not a host name or IP address")
        }

        let database = try decode(path, "database name")
        guard !database.contains("/") else {
            throw fail("the database name '\(database.prefix(60))' holds a '/': the path is just /DATABASE")
        }

        var values: [String: String] = [:]
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try decode(pair[0], "parameter name")
            let value = pair.count > 1 ? try decode(pair[1], "value of '\(key)'") : ""
            guard Self.parameters.contains(key) else {
                let nearest = UnknownSettings.nearest(to: key, among: Self.parameters).map { "; did you mean '\($0)'?" } ?? ""
                throw fail("the parameter '\(key.prefix(40))' is not supported\(nearest) (supported: \(Self.parameters.joined(separator: ", ")))")
            }
            guard values.updateValue(value, forKey: key) == nil else {
                throw fail("the parameter '\(key)' is given twice")
            }
        }

        var sslMode = SSLMode.prefer
        if let mode = values["sslmode"] {
            guard let m = SSLMode(rawValue: mode.lowercased()) else {
                throw fail("sslmode '\(mode.prefix(40))' is unknown: allowed values are \(SSLMode.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))")
            }
            sslMode = m
        }
        var unixSocketDirectory: String?
        if let socket = values["host"] {
            guard socket.hasPrefix("/") else {
                throw fail("the parameter host='\(socket.prefix(60))' must be a unix socket directory (an absolute path); put a TCP host in the URL: \(Self.example)")
            }
            guard host.isEmpty else {
                throw fail("give either a host in the URL or a socket directory in ?host=, not both")
            }
            unixSocketDirectory = socket
        } else if host.isEmpty {
            throw fail("no host: expected \(Self.example)")
        }
        if unixSocketDirectory != nil, sslMode.requiresTLS {
            throw fail("sslmode=\(sslMode.rawValue) cannot be used over a unix socket; use sslmode=disable there")
        }
        for key in ["sslrootcert", "sslcert", "sslkey"] {
            if let file = values[key], file.isEmpty || file.contains("\0") {
                throw fail("\(key) must name a PEM file")
            }
        }
        guard (values["sslcert"] == nil) == (values["sslkey"] == nil) else {
            throw fail("give sslcert and sslkey together (the client certificate and its private key)")
        }
        if sslMode == .disable, let tlsKey = ["sslrootcert", "sslcert", "sslkey"].first(where: { values[$0] != nil }) {
            throw fail("\(tlsKey) is given but sslmode=disable turns TLS off; use sslmode=verify-full (or verify-ca, require)")
        }
        var connectTimeout = 10
        if let t = values["connect_timeout"] {
            guard let seconds = Int(t), (1...3600).contains(seconds) else {
                throw fail("connect_timeout '\(t.prefix(20))' is not a number of seconds in 1...3600")
            }
            connectTimeout = seconds
        }

        self.host = host
        self.port = port
        self.unixSocketDirectory = unixSocketDirectory
        self.user = user
        self.password = password
        self.database = database.isEmpty ? nil : database
        self.sslMode = sslMode
        self.sslRootCert = values["sslrootcert"]
        self.sslCert = values["sslcert"]
        self.sslKey = values["sslkey"]
        self.connectTimeoutSeconds = connectTimeout
        self.applicationName = values["application_name"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The URL again, its password replaced by `<redacted>`: safe to log.
    public var redacted: String {
        let allowed = CharacterSet.urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/?#[]"))
        func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s }
        var text = "postgresql://" + encode(user)
        if password != nil { text += ":" + EffectiveConfiguration.redacted }
        text += "@"
        if unixSocketDirectory == nil {
            text += host.contains(":") ? "[\(host)]" : host
            text += ":\(port)"
        }
        text += "/" + encode(database ?? "")
        var parameters: [String] = []
        if let unixSocketDirectory { parameters.append("host=\(unixSocketDirectory)") }
        parameters.append("sslmode=\(sslMode.rawValue)")
        if let sslRootCert { parameters.append("sslrootcert=\(sslRootCert)") }
        if let sslCert { parameters.append("sslcert=\(sslCert)") }
        if let sslKey { parameters.append("sslkey=\(sslKey)") }
        if connectTimeoutSeconds != 10 { parameters.append("connect_timeout=\(connectTimeoutSeconds)") }
        if let applicationName { parameters.append("application_name=\(encode(applicationName))") }
        return text + "?" + parameters.joined(separator: "&")
    }

    /// ``redacted``.
    public var description: String { redacted }
    /// ``redacted``.
    public var debugDescription: String { redacted }
    /// `dump` and the debugger show ``redacted`` rather than the fields.
    public var customMirror: Mirror { Mirror(self, children: ["url": redacted]) }
}
