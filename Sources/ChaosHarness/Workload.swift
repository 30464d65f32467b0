import ChaosCheck
import LeaseFSM
import Raft
import Server
import Synchronization

/// Many clients creating, renewing (single and batch), releasing and
/// reading leases on shared and private objects through random nodes.
/// Holders renew at a third of the duration; some let leases lapse on
/// purpose. Every call is recorded in the history.
struct Workload: Sendable {
    /// Objects every client leases (several holders per object).
    static let sharedObjects = 4

    let run: ChaosRun

    /// A lease a client holds and keeps renewing.
    private struct Held {
        var id: LeaseID
        var object: ObjectKey
        var durationSeconds: UInt64
        var lastGrantAtMs: Int64
    }

    /// Runs client `index` until the workload stops.
    func client(_ index: Int) async {
        var random = Raft.SplitMix64(seed: run.seed &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15)
        var held: [Held] = []
        var created = 0
        let service = "svc-\(index)"
        while !run.workloadStopped {
            await run.sleep(ticks: Int.random(in: 1...3, using: &random))
            guard !run.workloadStopped else { break }
            guard let (node, store) = run.randomLiveNode(using: &random) else { continue }
            let now = run.time.now()
            let due = held.indices.filter { now - held[$0].lastGrantAtMs >= Int64(held[$0].durationSeconds) * 1000 / 3 }
            if !due.isEmpty, Double.random(in: 0..<1, using: &random) < 0.9 {
                let batch = due.count > 1 && Bool.random(using: &random) ? due : [due.randomElement(using: &random)!]
                await renew(batch.map { held[$0] }, service: service, client: index, node: node, store: store) { id, result in
                    guard let i = held.firstIndex(where: { $0.id == id }) else { return }
                    switch result {
                    case .granted(let at): held[i].lastGrantAtMs = at
                    case .ended: held.remove(at: i)
                    case .unknown: break
                    }
                }
                continue
            }
            let roll = Double.random(in: 0..<1, using: &random)
            if roll < 0.30, held.count < 3 {
                let shared = Double.random(in: 0..<1, using: &random) < 0.4
                let object = ObjectKey(
                    type: shared ? .blobStorage : .databaseRow,
                    id: shared ? "shared-\(Int.random(in: 0..<Self.sharedObjects, using: &random))" : "c\(index)-\(created)")
                created += 1
                let duration = UInt64.random(in: 2...4, using: &random)
                let behaviour = CleanupSink.behaviours.randomElement(using: &random)!
                let suffix = String(random.next() & 0xFFFF_FFFF, radix: 16)
                if let lease = await create(object, duration: duration, behaviour: behaviour, suffix: suffix, service: service, client: index, node: node, store: store) {
                    held.append(Held(id: lease, object: object, durationSeconds: duration, lastGrantAtMs: now))
                }
            } else if roll < 0.45, let victim = held.indices.randomElement(using: &random) {
                let lease = held.remove(at: victim)
                await release(lease.id, object: lease.object, service: service, client: index, node: node, store: store)
            } else if roll < 0.52, let victim = held.indices.randomElement(using: &random) {
                // Walk away without releasing: the lease must lapse and be cleaned.
                held.remove(at: victim)
            } else if let (lease, object) = run.knownLease(using: &random) {
                let linearizable = roll < 0.85
                await get(lease, object: object, linearizable: linearizable, client: index, node: node, store: store)
            }
        }
    }

    enum RenewResult {
        case granted(atMs: Int64)
        case ended
        case unknown
    }

    private func create(_ object: ObjectKey, duration: UInt64, behaviour: String, suffix: String, service: String,
                        client: Int, node: String, store: ChaosStore) async -> LeaseID? {
        let op = run.recorder.invoke(client: client, node: node, kind: .create, leaseID: nil, object: objectName(object), durationMs: Int64(duration) * 1000)
        let command = LeaseCommand.create(.init(
            leaseIDSuffix: suffix, object: object, serviceID: service, durationSeconds: duration,
            metadata: ["client": "\(client)"],
            cleanup: CleanupSpec(httpEndpoint: CleanupSink.endpoint(behaviour), maxRetries: 2, retryDelaySeconds: 1)))
        do {
            guard case .created(let lease) = try await store.propose(command) else {
                run.recorder.complete(op, .unknown("unexpected result"))
                return nil
            }
            run.recorder.complete(op, .ok(view(lease)))
            run.learn(lease.id, object: lease.object)
            return lease.id
        } catch {
            run.recorder.complete(op, outcome(error))
            return nil
        }
    }

    private func renew(_ leases: [Held], service: String, client: Int, node: String, store: ChaosStore,
                       _ update: (LeaseID, RenewResult) -> Void) async {
        // Each lease is renewed by its own duration (extend 0), so a renewal
        // never moves an expiry back and each acknowledged one is a lower
        // bound on the lease's life (the checkers rely on it).
        let ops = leases.map {
            run.recorder.invoke(client: client, node: node, kind: .renew, leaseID: $0.id.rawValue, object: objectName($0.object), durationMs: Int64($0.durationSeconds) * 1000)
        }
        let invokedAt = run.time.now()
        do {
            guard case .renewed(let outcomes) = try await store.propose(.renew(.init(leaseIDs: leases.map(\.id), serviceID: service, extendSeconds: 0))) else {
                for op in ops { run.recorder.complete(op, .unknown("unexpected result")) }
                return
            }
            for (op, lease) in zip(ops, leases) {
                switch outcomes.first(where: { $0.leaseID == lease.id })?.result {
                case .success(let renewed)?:
                    run.recorder.complete(op, .ok(view(renewed)))
                    update(lease.id, .granted(atMs: invokedAt))
                case .failure(let error)?:
                    run.recorder.complete(op, outcome(error))
                    update(lease.id, .ended)
                case nil:
                    run.recorder.complete(op, .unknown("no outcome for this lease"))
                    update(lease.id, .unknown)
                }
            }
        } catch {
            for op in ops { run.recorder.complete(op, outcome(error)) }
            if error is LeaseError { for lease in leases { update(lease.id, .ended) } }
        }
    }

    private func release(_ lease: LeaseID, object: ObjectKey, service: String, client: Int, node: String, store: ChaosStore) async {
        let op = run.recorder.invoke(client: client, node: node, kind: .release, leaseID: lease.rawValue, object: objectName(object))
        do {
            guard case .released(let released) = try await store.propose(.release(.init(leaseID: lease, serviceID: service))) else {
                run.recorder.complete(op, .unknown("unexpected result"))
                return
            }
            run.recorder.complete(op, .ok(view(released)))
        } catch {
            run.recorder.complete(op, outcome(error))
        }
    }

    private func get(_ lease: LeaseID, object: ObjectKey, linearizable: Bool, client: Int, node: String, store: ChaosStore) async {
        let op = run.recorder.invoke(client: client, node: node, kind: linearizable ? .get : .staleGet, leaseID: lease.rawValue, object: objectName(object))
        do {
            let found = try await store.read(linearizable ? .linearizable : .stale) { $0.lease(lease) }
            run.recorder.complete(op, .ok(found.map(view)))
        } catch {
            run.recorder.complete(op, outcome(error))
        }
    }

    private func outcome(_ error: any Error) -> Outcome {
        guard let error = error as? LeaseError else { return .unknown("\(error)") }
        switch error.code {
        case .failedPrecondition where error.message.contains("released"): return .refused(.released, error.message)
        case .failedPrecondition where error.message.contains("expired"): return .refused(.expired, error.message)
        case .notFound: return .refused(.notFound, error.message)
        default: return .refused(.other, error.message)
        }
    }
}

/// How histories name an object: `DatabaseRow/orders-7` (the cleanup
/// request's `object_type/object_id`).
func objectName(_ object: ObjectKey) -> String { "\(object.type.cleanupName)/\(object.id)" }

/// A lease as the history records it.
func view(_ lease: Lease) -> LeaseView {
    let state: LeaseView.State = switch lease.state {
    case .active: .active
    case .expired: .expired
    case .released: .released
    }
    return LeaseView(leaseID: lease.id.rawValue, object: objectName(lease.object), state: state,
                     expiresAtMs: lease.expiresAt.milliseconds, fencingToken: lease.fencingToken, incarnation: lease.incarnation)
}
