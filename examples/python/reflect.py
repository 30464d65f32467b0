#!/usr/bin/env python3
"""Server reflection against a running gc-sidecar node, with no .proto file.

What grpcurl's `list` and `describe` do, through grpcio-reflection's
ProtoReflectionDescriptorDatabase (which speaks grpc.reflection.v1alpha):

    list services             -> the client port's services, and nothing else
    describe DistributedGCService.CreateLease
                              -> its request and response types, whose
                                 google.protobuf.Timestamp field proves the
                                 imports came along
    call CreateLease          -> with a request message built from the
                                 reflected descriptors alone
    unknown symbol            -> NOT_FOUND, and the same stream goes on
                                 (checked on grpc.reflection.v1 too)

Every step checks what it got back: on the first surprise the script prints
what went wrong and exits with status 1, otherwise it prints a summary and
exits with 0. Run it through reflect.sh, which prepares the virtualenv:

    examples/python/reflect.sh --endpoint localhost:50051
"""

import argparse
import sys
import uuid

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2 as rpb
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

CLIENT_PORT_SERVICES = {
    "distributed_gc.DistributedGCService",
    "distributed_gc.BackupService",
    "distributed_gc.ClusterService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def reflection_stream(channel, version, requests):
    """Sends `requests` on one ServerReflectionInfo stream of `version`
    (v1 or v1alpha: their messages are the same on the wire) and returns the
    answers, one per request."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=rpb.ServerReflectionRequest.SerializeToString,
        response_deserializer=rpb.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=10))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="localhost:50051", help="a node's client port (host:port)")
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.endpoint)
    database = ProtoReflectionDescriptorDatabase(channel)

    # grpcurl list
    services = set(database.get_services())
    check(services == CLIENT_PORT_SERVICES,
          f"list_services: expected {sorted(CLIENT_PORT_SERVICES)}, got {sorted(services)}")
    print("services:", ", ".join(sorted(services)))

    # grpcurl describe distributed_gc.DistributedGCService.CreateLease
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("distributed_gc.DistributedGCService")
    check(len(service.methods) >= 10, f"DistributedGCService has only {len(service.methods)} methods")
    method = service.methods_by_name.get("CreateLease")
    check(method is not None, "DistributedGCService has no CreateLease method")
    check(method.input_type.full_name == "distributed_gc.CreateLeaseRequest",
          f"CreateLease takes {method.input_type.full_name}")
    check(method.output_type.full_name == "distributed_gc.CreateLeaseResponse",
          f"CreateLease returns {method.output_type.full_name}")
    request_fields = set(method.input_type.fields_by_name)
    check({"object_id", "object_type", "service_id", "lease_duration_seconds"} <= request_fields,
          f"CreateLeaseRequest fields: {sorted(request_fields)}")
    expires_at = method.output_type.fields_by_name.get("expires_at")
    check(expires_at is not None and expires_at.message_type.full_name == "google.protobuf.Timestamp",
          "CreateLeaseResponse.expires_at is not a google.protobuf.Timestamp (imports missing?)")
    print(f"rpc CreateLease ( {method.input_type.full_name} ) returns ( {method.output_type.full_name} )")
    watch = service.methods_by_name.get("WatchLeases")
    check(watch is not None and watch.server_streaming and not watch.client_streaming,
          "WatchLeases is not described as server-streaming")
    # A nested name and an enum resolve too.
    check(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse").enum_types_by_name.get("ServingStatus")
          is not None, "grpc.health.v1.HealthCheckResponse.ServingStatus not found")

    # A call built from the reflected descriptors alone, as grpcurl makes it.
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    object_id = f"reflect-{uuid.uuid4().hex[:8]}"
    request = request_class(object_id=object_id, service_id="python-reflection", lease_duration_seconds=60)
    request.object_type = method.input_type.fields_by_name["object_type"].enum_type.values[1].number
    create = channel.unary_unary(
        "/distributed_gc.DistributedGCService/CreateLease",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = create(request, timeout=10)
    check(response.success and response.lease_id,
          f"CreateLease from reflected descriptors failed: {response.error_message!r}")
    check(response.expires_at.seconds > 0, "CreateLease answered without expires_at")
    print(f"CreateLease (reflected types) -> lease {response.lease_id}")

    # Unknown names: NOT_FOUND through the descriptor database...
    try:
        database.FindFileContainingSymbol("distributed_gc.NoSuchThing")
        fail("an unknown symbol was found")
    except KeyError:
        pass
    # ...and on one raw stream of each version, which then answers the next
    # question: the error did not end the stream.
    for version in ("v1", "v1alpha"):
        answers = reflection_stream(channel, version, [
            rpb.ServerReflectionRequest(host="h", file_containing_symbol="distributed_gc.NoSuchThing"),
            rpb.ServerReflectionRequest(host="h", file_by_filename="no/such/file.proto"),
            rpb.ServerReflectionRequest(host="h", list_services=""),
            rpb.ServerReflectionRequest(host="h", file_containing_symbol="distributed_gc.DistributedGCService.CreateLease"),
        ])
        check(len(answers) == 4, f"{version}: {len(answers)} answers to 4 requests")
        for answer in answers[:2]:
            check(answer.WhichOneof("message_response") == "error_response"
                  and answer.error_response.error_code == NOT_FOUND,
                  f"{version}: an unknown name was answered with {answer}")
        listed = {s.name for s in answers[2].list_services_response.service}
        check(listed == CLIENT_PORT_SERVICES, f"{version}: list_services after an error: {sorted(listed)}")
        files = answers[3].file_descriptor_response.file_descriptor_proto
        names = [descriptor_pool_file_name(f) for f in files]
        check(names[:1] == ["gc_service.proto"] and "google/protobuf/timestamp.proto" in names,
              f"{version}: CreateLease's file and imports: {names}")
        check(answers[3].valid_host == "h" and answers[3].original_request.file_containing_symbol.endswith("CreateLease"),
              f"{version}: the answer does not echo its request")
    print("unknown names: NOT_FOUND, stream kept open (v1 and v1alpha)")

    print(f"OK: reflection lists {len(services)} services and describes DistributedGCService ({len(service.methods)} methods)")


def descriptor_pool_file_name(serialized):
    return descriptor_pb2.FileDescriptorProto.FromString(serialized).name


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        fail(f"{error.code().name}: {error.details()}")
