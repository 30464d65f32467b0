import NIOSSL
import PostgresNIO
@testable import Server
import Testing

@Suite("DATABASE_URL parsing")
struct DatabaseURLTests {
    @Test("the SPEC's example parses: host, port, user, password, database, sslmode prefer by default")
    func specExample() throws {
        let url = try DatabaseURL(parsing: "postgresql://user:pass@host:5432/distributed_gc")
        #expect(url.host == "host")
        #expect(url.port == 5432)
        #expect(url.user == "user")
        #expect(url.password == "pass")
        #expect(url.database == "distributed_gc")
        #expect(url.sslMode == .prefer)
        #expect(url.unixSocketPath == nil)
        #expect(url.connectTimeoutSeconds == 10)
    }

    @Test("postgres:// is accepted; the port defaults to 5432; no password and no database are allowed")
    func shortForms() throws {
        let url = try DatabaseURL(parsing: "postgres://gc@db.internal")
        #expect(url.host == "db.internal")
        #expect(url.port == 5432)
        #expect(url.password == nil)
        #expect(url.database == nil)
    }

    @Test("percent-escapes in user, password and database are decoded")
    func percentDecoding() throws {
        let url = try DatabaseURL(parsing: "postgresql://gc%40corp:p%40ss%3Aw%2Fo%25rd@db:6432/my%20db")
        #expect(url.user == "gc@corp")
        #expect(url.password == "p@ss:w/o%rd")
        #expect(url.database == "my db")
        #expect(url.port == 6432)
    }

    @Test("an IPv6 address in brackets, with and without a port")
    func ipv6() throws {
        let withPort = try DatabaseURL(parsing: "postgresql://gc@[::1]:5433/gc")
        #expect(withPort.host == "::1")
        #expect(withPort.port == 5433)
        #expect(try DatabaseURL(parsing: "postgresql://gc@[fd00::5]/gc").host == "fd00::5")
    }

    @Test("every sslmode, and which of them check the certificate and the host name", arguments: [
        ("disable", DatabaseURL.SSLMode.disable, false, false),
        ("prefer", .prefer, false, false),
        ("require", .require, false, false),
        ("verify-ca", .verifyCA, true, false),
        ("VERIFY-FULL", .verifyFull, true, true),
    ])
    func sslModes(text: String, mode: DatabaseURL.SSLMode, verifiesCertificate: Bool, verifiesHostName: Bool) throws {
        let url = try DatabaseURL(parsing: "postgresql://gc:pw@db:5432/gc?sslmode=\(text)")
        #expect(url.sslMode == mode)
        #expect(url.verifiesCertificate == verifiesCertificate)
        #expect(url.verifiesHostName == verifiesHostName)
        #expect(mode.requiresTLS == (mode != .disable && mode != .prefer))
    }

    @Test("sslmode=require with sslrootcert checks the chain, as in libpq")
    func requireWithRootCert() throws {
        let url = try DatabaseURL(parsing: "postgresql://gc@db/gc?sslmode=require&sslrootcert=/etc/ca.pem")
        #expect(url.sslRootCert == "/etc/ca.pem")
        #expect(url.verifiesCertificate)
        #expect(!url.verifiesHostName)
    }

    @Test("the other parameters: client certificate, connect_timeout, application_name, a unix socket directory")
    func parameters() throws {
        let url = try DatabaseURL(parsing:
            "postgresql://gc@db/gc?sslmode=verify-full&sslrootcert=system&sslcert=/c.pem&sslkey=/c.key&connect_timeout=3&application_name=gc%20sidecar")
        #expect(url.sslRootCert == "system")
        #expect(url.sslCert == "/c.pem")
        #expect(url.sslKey == "/c.key")
        #expect(url.connectTimeoutSeconds == 3)
        #expect(url.applicationName == "gc sidecar")
        let socket = try DatabaseURL(parsing: "postgresql://gc@/gc?host=/var/run/postgresql&sslmode=disable")
        #expect(socket.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
    }

    @Test("a bad URL names DATABASE_URL and what to fix, in one line, without the password", arguments: [
        ("mysql://gc:secret@db/gc", "postgresql://"),
        ("db.internal:5432/gc", "not a URL"),
        ("postgresql://db:5432/gc", "no user name"),
        ("postgresql://gc:secret@:5432/gc", "no host"),
        ("postgresql://gc:secret@db:99999/gc", "1...65535"),
        ("postgresql://gc:secret@db:port/gc", "1...65535"),
        ("postgresql://gc:secret@db1,db2/gc", "several hosts"),
        ("postgresql://gc:secret@[::1/gc", "']'"),
        ("postgresql://gc:secret@db/gc?sslmode=allow", "'verify-full'"),
        ("postgresql://gc:secret@db/gc?sslmode=verify_full", "sslmode 'verify_full' is unknown"),
        ("postgresql://gc:secret@db/gc?ssl_mode=require", "did you mean 'sslmode'"),
        ("postgresql://gc:secret@db/gc?sslmode=require&sslmode=disable", "given twice"),
        ("postgresql://gc:secret@db/gc?sslcert=/c.pem", "sslcert and sslkey together"),
        ("postgresql://gc:secret@db/gc?sslmode=disable&sslrootcert=/ca.pem", "sslmode=disable turns TLS off"),
        ("postgresql://gc:secret@db/gc?connect_timeout=0", "1...3600"),
        ("postgresql://gc:sec%zzret@db/gc", "%25"),
        ("postgresql://gc:secret@db/gc#frag", "fragment"),
        ("postgresql://gc:secret@db/gc/x", "holds a '/'"),
        ("postgresql://gc:secret@db/gc?host=relative/dir", "absolute path"),
        ("postgresql://gc:secret@/gc?host=/run/pg&sslmode=require", "unix socket"),
    ])
    func badURL(text: String, expected: String) {
        #expect {
            _ = try DatabaseURL(parsing: text)
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            let message = error.description
            return error.variable == "DATABASE_URL" && message.contains(expected) && !message.contains("secret")
                && !message.contains("\n")
        }
    }

    @Test("description, debugDescription and dump show the password as <redacted>")
    func redaction() throws {
        let url = try DatabaseURL(parsing: "postgresql://gc:hunter2@db:5432/gc?sslmode=verify-full&sslrootcert=/ca.pem")
        #expect(url.description == "postgresql://gc:<redacted>@db:5432/gc?sslmode=verify-full&sslrootcert=/ca.pem")
        #expect(!String(reflecting: url).contains("hunter2"))
        var dumped = ""
        dump(url, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(!"\(SidecarConfig.defaults)".contains("hunter2"))
        var config = SidecarConfig()
        config.database = url
        #expect(!"\(config)".contains("hunter2"))
    }

    @Test("the client configuration: endpoint, credentials, pool size, TLS per sslmode")
    func clientConfiguration() throws {
        let url = try DatabaseURL(parsing: "postgresql://gc:pw@db.internal:6543/distributed_gc?sslmode=disable&connect_timeout=4&application_name=gc")
        let configuration = try url.clientConfiguration(maxConnections: 17)
        #expect(configuration.host == "db.internal")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "gc")
        #expect(configuration.password == "pw")
        #expect(configuration.database == "distributed_gc")
        #expect(configuration.options.maximumConnections == 17)
        #expect(configuration.options.connectTimeout == .seconds(4))
        #expect(configuration.options.additionalStartupParameters.map(\.0) == ["plan_cache_mode", "application_name"])
        #expect(try url.tlsConfiguration() == nil)

        let prefer = try DatabaseURL(parsing: "postgresql://gc@db/gc").tlsConfiguration()
        #expect(prefer?.certificateVerification == CertificateVerification.none)
        let verifyCA = try DatabaseURL(parsing: "postgresql://gc@db/gc?sslmode=verify-ca").tlsConfiguration()
        #expect(verifyCA?.certificateVerification == .noHostnameVerification)
        let verifyFull = try DatabaseURL(parsing: "postgresql://gc@db/gc?sslmode=verify-full").tlsConfiguration()
        #expect(verifyFull?.certificateVerification == .fullVerification)
    }

    @Test("an unreadable sslrootcert is a setup error naming the file")
    func unreadableRootCert() throws {
        let url = try DatabaseURL(parsing: "postgresql://gc:secret@db/gc?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        #expect {
            _ = try url.clientConfiguration(maxConnections: 1)
        } throws: { error in
            guard let error = error as? DatabaseURL.SetupError else { return false }
            return error.description.contains("/nonexistent/ca.pem") && !error.description.contains("secret")
        }
    }
}
