import Logging
import NIOCore
import NIOSSL
import PostgresNIO

extension DatabaseURL {
    /// A `DATABASE_URL` that parsed but cannot be used: a TLS file that
    /// cannot be read. Names the parameter and the file, never the password.
    public struct SetupError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { "DATABASE_URL: \(message)" }
    }

    /// The TLS settings for ``sslMode``: no TLS (`disable`), TLS without a
    /// certificate check (`prefer`, and `require` without `sslrootcert`),
    /// the chain checked against `sslrootcert` or the system's roots
    /// (`verify-ca`, `require` with `sslrootcert`), and the host name too
    /// (`verify-full`). A client certificate when `sslcert` and `sslkey` are given.
    ///
    /// - Returns: nil for `disable`.
    /// - Throws: ``SetupError`` when a certificate or key file cannot be read.
    public func tlsConfiguration() throws(SetupError) -> TLSConfiguration? {
        guard sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if !verifiesCertificate {
            tls.certificateVerification = .none
        } else {
            tls.certificateVerification = verifiesHostName ? .fullVerification : .noHostnameVerification
            if let root = sslRootCert, root != "system" {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
                } catch {
                    throw SetupError(message: "sslrootcert \(root) is not a readable PEM file of CA certificates (\(error))")
                }
            }
        }
        if let sslCert, let sslKey {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(sslCert).map { .certificate($0) }
            } catch {
                throw SetupError(message: "sslcert \(sslCert) is not a readable PEM certificate (\(error))")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: sslKey, format: .pem))
            } catch {
                throw SetupError(message: "sslkey \(sslKey) is not a readable PEM private key (\(error))")
            }
        }
        return tls
    }

    /// The pool's configuration: this URL's endpoint, credentials and TLS,
    /// at most `maxConnections` connections (`GC_MAX_DB_CONNECTIONS`).
    ///
    /// - Throws: ``SetupError`` when a TLS file cannot be read.
    public func clientConfiguration(maxConnections: Int) throws(SetupError) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS = switch (sslMode, try tlsConfiguration()) {
            case (_, nil): .disable
            case (.prefer, let tls?): .prefer(tls)
            case (_, let tls?): .require(tls)
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(Int64(connectTimeoutSeconds))
        // The statements every write runs are prepared once per connection
        // (PostgresStatements); with the default plan cache mode PostgreSQL
        // kept planning them on every call (their arrays make the generic
        // plan look dearer), which was most of its CPU per create.
        configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }

    /// One connection's configuration (migrations, the start-up probe):
    /// the same endpoint, credentials and TLS as ``clientConfiguration(maxConnections:)``.
    ///
    /// - Throws: ``SetupError`` when a TLS file cannot be read or its
    ///   context cannot be made.
    public func connectionConfiguration() throws(SetupError) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: user, password: password, database: database)
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if let tlsConfiguration = try tlsConfiguration() {
                let context: NIOSSLContext
                do {
                    context = try NIOSSLContext(configuration: tlsConfiguration)
                } catch {
                    throw SetupError(message: "cannot set up TLS (\(error))")
                }
                tls = sslMode == .prefer ? .prefer(context) : .require(context)
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(Int64(connectTimeoutSeconds))
        // The statements every write runs are prepared once per connection
        // (PostgresStatements); with the default plan cache mode PostgreSQL
        // kept planning them on every call (their arrays make the generic
        // plan look dearer), which was most of its CPU per create.
        configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }

    /// Opens one connection (no pool), runs `body` on it and closes it,
    /// also when `body` throws or the task is cancelled (a cancelled task
    /// closes the connection, which ends a query in flight).
    ///
    /// - Throws: ``SetupError``, or the connection's or `body`'s error
    ///   (``PostgresFailure/describe(_:)`` gives a one-line text for it).
    public func withConnection<Result: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let configuration = try connectionConfiguration()
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let result: Result
        do {
            result = try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                connection.close().whenComplete { _ in }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        return result
    }
}
