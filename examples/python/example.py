#!/usr/bin/env python3
"""A tour of the gc-sidecar client API, and a smoke test of a running node.

It walks one lease through its life while watching the event stream:

    HealthCheck                     -> which node, which version, log position
    WatchLeases (background thread) -> lease events of our service
    CreateLease                     -> a WEBSOCKET_SESSION lease for 60 s
    RenewLease                      -> extend it
    GetLease                        -> read it back (ACTIVE)
    RenewLeases                     -> batch renewal (here: a batch of one)
    ReleaseLease                    -> end it
    GetLease                        -> read it back (RELEASED)

and then checks that the watch delivered CREATED, RENEWED, RENEWED, RELEASED
for the lease, in that order. Every step checks what it got back: on the first
surprise the script prints what went wrong and exits with status 1, otherwise
it prints a summary and exits with 0.

Run it through run.sh, which prepares a virtualenv and the generated stubs:

    examples/python/run.sh --endpoint localhost:50051
"""

import argparse
import sys
import threading
import time
import uuid

import grpc

try:
    # Generated from proto/gc_service.proto by run.sh (grpc_tools.protoc).
    import gc_service_pb2 as pb
    import gc_service_pb2_grpc as pb_grpc
except ImportError as error:  # pragma: no cover - only when run without run.sh
    sys.exit(f"cannot import the generated stubs ({error}); run this through examples/python/run.sh")

# Deadline of each unary call, in seconds.
CALL_TIMEOUT = 10
# How long to wait for the watch to deliver the expected events, in seconds.
WATCH_TIMEOUT = 10

Event = pb.LeaseEvent


class CheckFailed(Exception):
    """An answer from the node was not what the example expects."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def kind_name(kind):
    return Event.Kind.Name(kind)


def nanos(timestamp):
    """A google.protobuf.Timestamp as integer nanoseconds (exact comparisons)."""
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos


def events_of(events, lease_id):
    return [e for e in events if e.lease_id == lease_id]


def is_end(event):
    """The lease's life is over (cleanup events may still follow)."""
    return event.kind in (Event.Kind.RELEASED, Event.Kind.EXPIRED)


def describe(event):
    return f"#{event.index}.{event.position} {kind_name(event.kind)} lease={event.lease_id} reason={event.reason!r}"


class LeaseWatcher:
    """Reads a WatchLeases stream on a background thread and keeps its events.

    The sync gRPC API hands a server stream out as a blocking iterator, so a
    thread consumes it while the main thread makes the unary calls.
    """

    def __init__(self, stub, service_id, after_index):
        # The stream starts right away; events arrive as the node applies
        # commands. `after_index` makes the node first replay every retained
        # event with a larger log index, so nothing that happens after that
        # point can be missed, however long the stream takes to be set up.
        self._call = stub.WatchLeases(pb.WatchLeasesRequest(service_id=service_id, after_index=after_index))
        self._events = []
        self._error = None
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="watch-leases", daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for event in self._call:
                with self._changed:
                    self._events.append(event)
                    self._changed.notify_all()
        except grpc.RpcError as error:
            # cancel() ends the stream with CANCELLED: that is how we stop it.
            if error.code() != grpc.StatusCode.CANCELLED:
                self._error = error
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def wait_until(self, done, timeout):
        """Waits until `done(events)` is true; returns the events seen so far."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self._events):
                if self._error is not None:
                    raise CheckFailed(f"the watch stream failed: {self._error.code().name}: {self._error.details()}")
                if self._ended:
                    raise CheckFailed("the watch stream ended unexpectedly")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = "\n    ".join(describe(e) for e in self._events) or "(none)"
                    raise CheckFailed(f"the watch did not deliver the expected events within {timeout} s; seen:\n    {seen}")
                self._changed.wait(remaining)
            return list(self._events)

    def cancel(self):
        self._call.cancel()
        self._thread.join(timeout=5)


def open_channel(endpoint, cacert=None, cert=None, key=None, token=None):
    """A channel to the node: plaintext, or TLS when a CA is given (mutual
    TLS with a client certificate and key); a bearer token is sent as
    `authorization: Bearer ...` on every call (it needs TLS)."""
    if cacert is None:
        if token is not None:
            raise CheckFailed("--token needs TLS (--cacert): tokens are never sent in plaintext by this example")
        return grpc.insecure_channel(endpoint)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(cacert),
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None)
    if token is not None:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(endpoint, credentials)


def run(endpoint, service_id, cacert=None, cert=None, key=None, token=None):
    with open_channel(endpoint, cacert, cert, key, token) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
        except grpc.FutureTimeoutError:
            raise CheckFailed(f"cannot connect to {endpoint} within {CALL_TIMEOUT} s; is a node running there?")
        stub = pb_grpc.DistributedGCServiceStub(channel)

        # 1. HealthCheck: who answers, and how far its log has been applied.
        #    A node that has applied nothing yet (applied_index 0: no leader
        #    elected so far) is asked again for a little while, because the
        #    watch below needs a non-zero starting point.
        deadline = time.monotonic() + CALL_TIMEOUT
        health = stub.HealthCheck(pb.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        while health.applied_index == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            health = stub.HealthCheck(pb.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        print(f"connected to node {health.node_id!r} (version {health.version}) at {endpoint}: "
              f"healthy={health.healthy} active_leases={health.active_leases} applied_index={health.applied_index}")
        expect(health.healthy, "the node reports itself unhealthy")
        expect(health.applied_index > 0, f"the node has applied nothing within {CALL_TIMEOUT} s (no leader?)")

        # 2. Watch this service's lease events, starting after the applied
        #    index: everything we do below has a larger index. (after_index=0
        #    would mean "only events from when the node sets up the stream",
        #    which could miss the first ones since the stream is set up
        #    asynchronously.)
        watcher = LeaseWatcher(stub, service_id, after_index=health.applied_index)
        try:
            lease_id = lease_lifecycle(stub, service_id)

            # 3. Wait until the watch has seen the lease end.
            events = watcher.wait_until(lambda seen: any(is_end(e) for e in events_of(seen, lease_id)), WATCH_TIMEOUT)
        finally:
            watcher.cancel()

    # 4. The watch saw the whole life of the lease, in order.
    ours = events_of(events, lease_id)
    print("watch events of the lease:")
    for event in ours:
        print(f"    {describe(event)}")
    # Up to the end of the lease (any cleanup events would come after it).
    end = next(i for i, e in enumerate(ours) if is_end(e))
    kinds = [kind_name(e.kind) for e in ours[: end + 1]]
    expected = ["CREATED", "RENEWED", "RENEWED", "RELEASED"]
    expect(kinds == expected, f"watch events of the lease were {kinds}, expected {expected}")
    expect(all(e.service_id == service_id for e in events),
           f"the watch filtered by service {service_id!r} delivered another service's event")
    positions = [(e.index, e.position) for e in events]
    expect(positions == sorted(set(positions)), f"watch events are not in log order: {positions}")
    expect(ours[0].index > health.applied_index,
           f"CREATED has index {ours[0].index}, not after the health check's applied index {health.applied_index}")

    print(f"OK: lease {lease_id} was created, renewed twice, read back and released, "
          f"and the watch saw {len(ours)} events for it in order")


def lease_lifecycle(stub, service_id):
    """Creates, renews, reads and releases one lease; returns its id."""
    object_id = f"session-{uuid.uuid4()}"

    # CreateLease: this service now holds the object for 60 s. No cleanup
    # config: when the lease ends nothing is called. (With cleanup_config the
    # node would call your endpoint once the object's last lease ended.)
    created = stub.CreateLease(pb.CreateLeaseRequest(
        object_id=object_id,
        object_type=pb.ObjectType.WEBSOCKET_SESSION,
        service_id=service_id,
        lease_duration_seconds=60,
        metadata={"example": "python", "user": "alice"},
    ), timeout=CALL_TIMEOUT)
    expect(created.success, f"CreateLease failed: {created.error_message}")
    lease_id = created.lease_id
    print(f"created lease {lease_id} on {object_id} (expires {created.expires_at.ToJsonString()}, "
          f"fencing token {created.fencing_token})")

    # RenewLease: push the expiry out again (0 = by the lease's own duration).
    renewed = stub.RenewLease(pb.RenewLeaseRequest(lease_id=lease_id, service_id=service_id), timeout=CALL_TIMEOUT)
    expect(renewed.success, f"RenewLease failed: {renewed.error_message}")
    expect(nanos(renewed.new_expires_at) >= nanos(created.expires_at),
           f"RenewLease moved the expiry back: {created.expires_at.ToJsonString()} -> {renewed.new_expires_at.ToJsonString()}")
    expect(renewed.fencing_token > created.fencing_token, "RenewLease did not advance the fencing token")
    print(f"renewed: expires {renewed.new_expires_at.ToJsonString()}, fencing token {renewed.fencing_token}")

    # GetLease: read it back (linearizable by default).
    got = stub.GetLease(pb.GetLeaseRequest(lease_id=lease_id), timeout=CALL_TIMEOUT)
    expect(got.found, f"GetLease did not find lease {lease_id}")
    expect(got.lease.state == pb.LeaseState.ACTIVE, f"lease state is {pb.LeaseState.Name(got.lease.state)}, expected ACTIVE")
    expect(got.lease.object_id == object_id, f"lease is on {got.lease.object_id!r}, expected {object_id!r}")
    expect(got.lease.metadata["user"] == "alice", f"lease metadata is {dict(got.lease.metadata)}")
    print(f"read back: state ACTIVE, renewal_count {got.lease.renewal_count}")

    # RenewLeases: renew many leases of one service in one call. Each lease
    # gets its own result; here the batch has just our lease.
    batch = stub.RenewLeases(pb.RenewLeasesRequest(lease_ids=[lease_id], service_id=service_id), timeout=CALL_TIMEOUT)
    expect(len(batch.results) == 1, f"RenewLeases returned {len(batch.results)} results for 1 lease")
    result = batch.results[0]
    expect(result.lease_id == lease_id and result.success,
           f"RenewLeases failed for {result.lease_id}: {result.error_code} {result.error_message}")
    expect(nanos(result.new_expires_at) >= nanos(renewed.new_expires_at), "RenewLeases moved the expiry back")
    print(f"batch-renewed: expires {result.new_expires_at.ToJsonString()}")

    # ReleaseLease: we are done with the object.
    released = stub.ReleaseLease(pb.ReleaseLeaseRequest(lease_id=lease_id, service_id=service_id), timeout=CALL_TIMEOUT)
    expect(released.success, f"ReleaseLease failed: {released.error_message}")

    got = stub.GetLease(pb.GetLeaseRequest(lease_id=lease_id), timeout=CALL_TIMEOUT)
    expect(got.found, f"GetLease did not find released lease {lease_id}")
    expect(got.lease.state == pb.LeaseState.RELEASED, f"lease state is {pb.LeaseState.Name(got.lease.state)}, expected RELEASED")
    print("released: state RELEASED")
    return lease_id


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", default="localhost:50051", help="host:port of a gc-sidecar node (default: %(default)s)")
    parser.add_argument("--service-id", default="python-example", help="service id the lease is held by (default: %(default)s)")
    parser.add_argument("--cacert", help="CA bundle (PEM) of the node's certificate: turns TLS on")
    parser.add_argument("--cert", help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--key", help="client certificate's private key (PEM)")
    parser.add_argument("--token", help="bearer token (sent as 'authorization: Bearer ...'; needs --cacert)")
    args = parser.parse_args()
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    try:
        run(args.endpoint, args.service_id, args.cacert, args.cert, args.key, args.token)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"FAILED: gRPC call failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
