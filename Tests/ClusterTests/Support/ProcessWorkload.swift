import ChaosCheck
import Foundation
import GCProto
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Synchronization

/// Milliseconds since 1970 on the host clock (the nodes share it).
func hostMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

/// Clients calling real nodes over gRPC: create, renew (by each lease's own
/// duration), release, linearizable and stale reads on shared and private
/// objects; every call recorded in a chaos history.
final class ProcessWorkload: Sendable {
    let cluster: ProcessCluster
    let recorder: HistoryRecorder
    /// `…/cleanup` (succeeds) and `…/flaky` (fails the first attempt).
    let endpoints: [String]
    let stopped = Mutex(false)
    let known = Mutex<[(id: String, object: String)]>([])

    init(cluster: ProcessCluster, recorder: HistoryRecorder, endpoints: [String]) {
        self.cluster = cluster
        self.recorder = recorder
        self.endpoints = endpoints
    }

    /// Calls give up after this (a paused node never answers).
    static let options: CallOptions = {
        var options = CallOptions.defaults
        options.timeout = .seconds(2)
        options.waitForReady = false
        return options
    }()

    private struct Held {
        var id: String
        var object: String
        var incarnation: UInt64
        var durationSeconds: Int64
        var lastGrantMs: Int64
    }

    func client(_ index: Int) async {
        var random = SystemRandomNumberGenerator()
        var held: [Held] = []
        var created = 0
        let service = "svc-\(index)"
        while !stopped.withLock({ $0 }) {
            try? await Task.sleep(for: .milliseconds(Int.random(in: 20...80, using: &random)))
            let node = Int.random(in: 0..<cluster.nodes.count, using: &random)
            guard cluster.nodes[node].isRunning else { continue }
            let name = cluster.nodes[node].name
            let client = cluster.leases[node]
            let now = hostMilliseconds()
            if let due = held.indices.first(where: { now - held[$0].lastGrantMs >= held[$0].durationSeconds * 1000 / 3 }) {
                let lease = held[due]
                let op = recorder.invoke(client: index, node: name, kind: .renew, leaseID: lease.id, object: lease.object, durationMs: lease.durationSeconds * 1000)
                var request = DistributedGc_RenewLeaseRequest()
                request.leaseID = lease.id
                request.serviceID = service
                do {
                    let response = try await client.renewLease(request, options: Self.options)
                    recorder.complete(op, .ok(LeaseView(leaseID: lease.id, object: lease.object, state: .active,
                                                        expiresAtMs: milliseconds(response.newExpiresAt),
                                                        fencingToken: response.fencingToken, incarnation: lease.incarnation)))
                    held[due].lastGrantMs = now
                } catch {
                    let outcome = Self.outcome(error)
                    recorder.complete(op, outcome)
                    if case .refused = outcome { held.remove(at: due) }
                }
                continue
            }
            let roll = Double.random(in: 0..<1, using: &random)
            if roll < 0.35, held.count < 3 {
                let shared = Bool.random(using: &random)
                let objectID = shared ? "shared-\(Int.random(in: 0..<3, using: &random))" : "p\(index)-\(created)"
                created += 1
                let object = "DatabaseRow/\(objectID)"
                let duration = Int64.random(in: 2...3, using: &random)
                let op = recorder.invoke(client: index, node: name, kind: .create, leaseID: nil, object: object, durationMs: duration * 1000)
                var request = DistributedGc_CreateLeaseRequest()
                request.objectID = objectID
                request.objectType = .databaseRow
                request.serviceID = service
                request.leaseDurationSeconds = UInt64(duration)
                var cleanup = DistributedGc_CleanupConfig()
                cleanup.cleanupHTTPEndpoint = endpoints.randomElement(using: &random)!
                cleanup.maxRetries = 2
                cleanup.retryDelaySeconds = 1
                request.cleanupConfig = cleanup
                do {
                    let response = try await client.createLease(request, options: Self.options)
                    recorder.complete(op, .ok(LeaseView(leaseID: response.leaseID, object: object, state: .active,
                                                        expiresAtMs: milliseconds(response.expiresAt),
                                                        fencingToken: response.fencingToken, incarnation: response.incarnation)))
                    held.append(Held(id: response.leaseID, object: object, incarnation: response.incarnation, durationSeconds: duration, lastGrantMs: now))
                    known.withLock { $0.append((response.leaseID, object)) }
                } catch {
                    recorder.complete(op, Self.outcome(error))
                }
            } else if roll < 0.5, let victim = held.indices.randomElement(using: &random) {
                let lease = held.remove(at: victim)
                let op = recorder.invoke(client: index, node: name, kind: .release, leaseID: lease.id, object: lease.object)
                var request = DistributedGc_ReleaseLeaseRequest()
                request.leaseID = lease.id
                request.serviceID = service
                do {
                    _ = try await client.releaseLease(request, options: Self.options)
                    recorder.complete(op, .ok(nil))
                } catch {
                    recorder.complete(op, Self.outcome(error))
                }
            } else if roll < 0.55, !held.isEmpty {
                // Walk away: the lease must lapse and its object be cleaned.
                held.removeFirst()
            } else if let lease = known.withLock({ $0.randomElement(using: &random) }) {
                let linearizable = roll < 0.85
                await get(lease.id, object: lease.object, linearizable: linearizable, via: node, client: index)
            }
        }
    }

    /// A recorded GetLease.
    func get(_ id: String, object: String, linearizable: Bool, via node: Int, client index: Int) async {
        let op = recorder.invoke(client: index, node: cluster.nodes[node].name, kind: linearizable ? .get : .staleGet, leaseID: id, object: object)
        var request = DistributedGc_GetLeaseRequest()
        request.leaseID = id
        request.consistency = linearizable ? .linearizable : .stale
        do {
            let response = try await cluster.leases[node].getLease(request, options: Self.options)
            recorder.complete(op, .ok(response.found ? view(response.lease) : nil))
        } catch {
            recorder.complete(op, Self.outcome(error))
        }
    }

    static func outcome(_ error: any Error) -> Outcome {
        guard let error = error as? RPCError else { return .unknown("\(error)") }
        switch error.code {
        case .failedPrecondition where error.message.contains("released"): return .refused(.released, error.message)
        case .failedPrecondition where error.message.contains("expired"): return .refused(.expired, error.message)
        case .notFound: return .refused(.notFound, error.message)
        case .invalidArgument, .permissionDenied, .resourceExhausted, .alreadyExists, .failedPrecondition:
            return .refused(.other, error.message)
        default: return .unknown("\(error.code): \(error.message)")
        }
    }
}

func milliseconds(_ timestamp: Google_Protobuf_Timestamp) -> Int64 {
    timestamp.seconds * 1000 + Int64(timestamp.nanos) / 1_000_000
}

/// A wire lease as a chaos history records it. The wire says EXPIRED as
/// soon as a lease is past its expiry; until the leader reaps it (and sets
/// `ended_at`) it is still active in the state machine, which is what the
/// history means by active.
func view(_ lease: DistributedGc_LeaseInfo) -> LeaseView {
    let state: LeaseView.State = switch lease.state {
    case .expired where lease.hasEndedAt: .expired
    case .released: .released
    default: .active
    }
    return LeaseView(leaseID: lease.leaseID, object: "DatabaseRow/\(lease.objectID)", state: state,
                     expiresAtMs: milliseconds(lease.expiresAt), fencingToken: lease.fencingToken, incarnation: lease.incarnation)
}
