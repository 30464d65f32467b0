// swift-tools-version: 6.1
//
// Distributed GC Sidecar: a Raft-replicated, lease-based garbage collector.
// Dependency direction (DESIGN.md): Server -> LeaseFSM, Server -> Raft.
// LeaseFSM and Raft never import gRPC, NIO or SQLite.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "distributed-gc-sidecar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gc-sidecar", targets: ["gc-sidecar"]),
        .executable(name: "gcctl", targets: ["gcctl"]),
        .library(name: "LeaseFSM", targets: ["LeaseFSM"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "RaftSQLite", targets: ["RaftSQLite"]),
        .library(name: "GCProto", targets: ["GCProto"]),
        // Client library: node list with fail-over, safe retries, LeaseKeeper.
        .library(name: "GCClient", targets: ["GCClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        // Security: TLS certificates and their reload, caller identity from
        // certificates, token hashes, and the YAML authorization policy.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"6.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        // GC_STORAGE_BACKEND=postgres: the connection pool (PostgresClient) and wire protocol.
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        // Raft consensus core: pure, deterministic (tick/step/propose in, Ready out).
        // No Foundation networking, no SQLite, no NIO.
        .target(name: "Raft", swiftSettings: swiftSettings),
        // The system SQLite (Debian/Ubuntu: libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // Durable Raft log, hard state and snapshots in one SQLite database per node.
        .target(name: "RaftSQLite", dependencies: ["Raft", "CSQLite"], swiftSettings: swiftSettings),
        // Test support for RaftSQLiteTests: appends batches and prints each acknowledged
        // index until it is SIGKILLed.
        .executableTarget(name: "raft-sqlite-crasher", dependencies: ["Raft", "RaftSQLite"], swiftSettings: swiftSettings),
        // Benchmark: commits/s and commit latency of a 3-node in-process cluster.
        .executableTarget(name: "raft-bench", dependencies: ["Raft", "RaftSQLite"], swiftSettings: swiftSettings),
        .testTarget(name: "RaftTests", dependencies: ["Raft"], swiftSettings: swiftSettings),
        .testTarget(name: "RaftSQLiteTests", dependencies: ["Raft", "RaftSQLite"], swiftSettings: swiftSettings),
        // Generated protobuf/gRPC code for the client API (proto/gc_service.proto).
        // Regenerate with scripts/generate-protos.sh; never edit by hand.
        .target(
            name: "GCProto",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift client library (README "Client library", examples/swift).
        .target(
            name: "GCClient",
            dependencies: [
                "GCProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: swiftSettings
        ),
        // examples/swift: a service that holds leases with LeaseKeeper (built
        // with the package so it cannot rot).
        .executableTarget(
            name: "lease-keeper-example",
            dependencies: ["GCClient", "GCProto"],
            path: "examples/swift/LeaseKeeperExample",
            swiftSettings: swiftSettings
        ),
        // Benchmark: cleanups/s to a local HTTP or gRPC sink and create latency
        // during a mass expiry, against a running node (BENCHMARKS.md).
        .executableTarget(
            name: "cleanup-bench",
            dependencies: [
                "GCClient", "GCProto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The deterministic lease state machine: commands, state, snapshots. No I/O.
        .target(
            name: "LeaseFSM",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // gRPC services, reaper, cleanup dispatch, metrics, configuration.
        .target(
            name: "Server",
            dependencies: [
                "LeaseFSM",
                "GCProto",
                "Raft",
                "RaftSQLite",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // NIOThreadPool: getaddrinfo for the cleanup egress check.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gc-sidecar",
            dependencies: [
                "Server",
                // --help, --version, and subcommands (serve, config, restore, recover).
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gcctl",
            dependencies: [
                "GCProto",
                // SplitMix64 for the bench workload.
                "Raft",
                // ClientSecurity: TLS, client certificates, bearer tokens.
                "GCClient",
                // `gcctl snapshot save`: the snapshot file format and its checksum.
                "RaftSQLite",
                // SidecarVersion, for `gcctl --version`.
                "Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // `gcctl bench` latency percentiles.
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The chaos checkers: histories, a linearizability search, and the
        // properties every run must keep. Pure Swift, shared by the in-process
        // harness and the real-process chaos test.
        .target(name: "ChaosCheck", swiftSettings: swiftSettings),
        // The in-process chaos harness: real nodes (LeaseFSM, Raft, SQLite),
        // a fault-injecting network, per-node clocks and disks, a workload.
        .target(
            name: "ChaosHarness",
            dependencies: [
                "ChaosCheck", "Server", "LeaseFSM", "Raft", "RaftSQLite", "GCProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `swift run chaos --seed S …` (chaos/README.md).
        .executableTarget(
            name: "chaos",
            dependencies: [
                "ChaosHarness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChaosTests",
            dependencies: ["ChaosCheck", "ChaosHarness"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LeaseFSMTests",
            dependencies: [
                "LeaseFSM",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server",
                // LeaseKeeperRenewalTests: the keeper against an in-process node.
                "GCClient",
                "TestPKI",
                // A throwaway PostgreSQL for the contract tests in postgres mode.
                "TestPostgres",
                "Raft",
                "LeaseFSM",
                "GCProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // The PostgreSQL store's tests against a throwaway server.
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Throwaway certificates for the TLS tests (made with openssl).
        .target(name: "TestPKI", path: "Tests/TestPKI", swiftSettings: swiftSettings),
        // Throwaway PostgreSQL 15 servers for the postgres-mode tests
        // (scripts/lib/postgres.sh; Debian's postgresql package).
        .target(name: "TestPostgres", path: "Tests/TestPostgres", swiftSettings: swiftSettings),
        // GC_STORAGE_BACKEND=postgres against a real throwaway server: the
        // DATABASE_URL, migrations, the start-up connector, `gc-sidecar migrate`.
        .testTarget(
            name: "PostgresTests",
            dependencies: [
                "Server",
                "TestPostgres",
                "TestPKI",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Three real gc-sidecar processes on loopback (needs the gc-sidecar
        // product built: `swift build --build-tests` builds it).
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "GCProto",
                "GCClient",
                "ChaosCheck",
                "TestPKI",
                // Sidecars in postgres mode over a throwaway PostgreSQL.
                "TestPostgres",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
