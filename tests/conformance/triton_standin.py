"""A stand-in for Triton's gRPC service, for the conformance corpus (pure logic: the gateways'
own code runs unchanged, Triton's answers are the corpus's).

It serves each corpus model's metadata and config (version "" or "1"; anything else is Triton's
NOT_FOUND with Triton's message; a name is cut at a NUL, as Triton's C API cuts it), answers ModelInfer with the current case's answer or error, and
records every ModelInfer it receives. gateway-grpc/corpus_test.go has its Go twin.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

VERSIONS = ("", "1")


def unknown_model(name: str, version: str) -> str:
    """Triton 2.51's message for a model or version it does not serve."""
    shown = f"'{name}' version {version}" if version not in VERSIONS else f"'{name}'"
    return f"Request for unknown model: {shown} is not found"


def served(name: str) -> str:
    """The model Triton 2.51 serves for a name: its C API cuts the name at a NUL (measured)."""
    return name.split("\0", 1)[0]


class TritonStandIn(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: dict[str, dict[str, Any]]) -> None:
        self.metadata = {
            name: json_format.ParseDict(m["metadata"], service_pb2.ModelMetadataResponse())
            for name, m in models.items()
        }
        self.configs = {
            name: json_format.ParseDict(m["config"], model_config_pb2.ModelConfig())
            for name, m in models.items()
        }
        self.triton: dict[str, Any] | None = None
        self.received: list[service_pb2.ModelInferRequest] = []
        self._lock = threading.Lock()

    def answer_with(self, triton: dict[str, Any] | None) -> None:
        """What ModelInfer answers next (a corpus case's `triton`), and forget what was received."""
        with self._lock:
            self.triton = triton
            self.received = []

    def _known(self, name: str, version: str, context: grpc.ServicerContext) -> None:
        if served(name) not in self.metadata or version not in VERSIONS:
            context.abort(grpc.StatusCode.NOT_FOUND, unknown_model(name, version))

    def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=True)

    def ModelMetadata(self, request, context):
        self._known(request.name, request.version, context)
        return self.metadata[served(request.name)]

    def ModelConfig(self, request, context):
        self._known(request.name, request.version, context)
        return service_pb2.ModelConfigResponse(config=self.configs[served(request.name)])

    def ModelInfer(self, request, context):
        with self._lock:
            self.received.append(request)
            triton = self.triton
        if triton is None:
            context.abort(grpc.StatusCode.INTERNAL, "the corpus says Triton is not reached")
        if "error" in triton:
            error = triton["error"]
            context.abort(getattr(grpc.StatusCode, error["code"]), error["message"])
        return json_format.ParseDict(triton["answer"], service_pb2.ModelInferResponse())


def serve(standin: TritonStandIn) -> tuple[grpc.Server, str]:
    """Start the stand-in on a free port: (server, its host:port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(standin, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
