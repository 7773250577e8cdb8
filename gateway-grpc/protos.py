"""Write the KServe v2 protos that tritonclient ships (as compiled descriptors) to a descriptor set.

tritonclient carries no .proto files, only their descriptors; protoc generates Go types from those
(`protoc --descriptor_set_in`), so the native front end and the Python one share the same protos.
"""

import sys

from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2

descriptors = descriptor_pb2.FileDescriptorSet()
for module in (model_config_pb2, service_pb2):  # dependencies first
    module.DESCRIPTOR.CopyToProto(descriptors.file.add())
with open(sys.argv[1], "wb") as out:
    out.write(descriptors.SerializeToString())
