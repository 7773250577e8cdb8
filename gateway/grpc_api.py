"""The KServe v2 `GRPCInferenceService`, served by the gateway with the same cache as HTTP.

`tritonclient.grpc.InferenceServerClient` pointed at the gateway works unchanged: inference goes
through validation, the cache and the coalescer; health and metadata calls are answered by Triton.
"""

from __future__ import annotations

import time

import grpc
from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2, service_pb2_grpc

from gateway import metrics
from gateway.errors import GatewayError
from gateway.kserve import proto_response, tensors_from_proto
from gateway.service import PredictionService
from gateway.settings import Settings

ROUTE = "grpc:ModelInfer"
SERVICE = "inference.GRPCInferenceService"
# The other methods (shared memory, statistics, repository control, streaming) answer UNIMPLEMENTED.
PROXIED_METHODS = (
    "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelConfig",
    "ModelStatistics",  # perf_analyzer reads Triton's statistics through whatever it points at
)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, service: PredictionService, settings: Settings) -> None:
        self.service = service
        self.settings = settings

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        given = dict(context.invocation_metadata() or ()).get("x-api-key", "")
        if not self.settings.key_accepted(given):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid x-api-key")

    async def _proxy(self, context, method: str, *args, **kwargs):
        await self._authorize(context)
        try:
            return await self.service.triton.call(method, *args, client_timeout=5.0, **kwargs)
        except GatewayError as error:
            await context.abort(error.grpc_code, error.message)

    async def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=await self.service.triton.ready())

    async def ModelReady(self, request, context):
        ready = await self._proxy(context, "is_model_ready", request.name, request.version)
        return service_pb2.ModelReadyResponse(ready=bool(ready))

    async def ServerMetadata(self, request, context):
        return await self._proxy(context, "get_server_metadata")

    async def ModelMetadata(self, request, context):
        return await self._proxy(context, "get_model_metadata", request.name, request.version)

    async def ModelConfig(self, request, context):
        return await self._proxy(context, "get_model_config", request.name, request.version)

    async def ModelStatistics(self, request, context):
        return await self._proxy(context, "get_inference_statistics", request.name, request.version)

    async def ModelInferBytes(self, data: bytes, context):
        """ModelInfer from raw bytes: a request that does not parse is the client's mistake."""
        try:
            request = service_pb2.ModelInferRequest.FromString(data)
        except DecodeError:
            await self._authorize(context)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request is not a ModelInferRequest")
        return await self.ModelInfer(request, context)

    async def ModelInfer(self, request: service_pb2.ModelInferRequest, context):
        await self._authorize(context)
        started = time.perf_counter()
        model, status = "", "500"
        try:
            async with self.service.admitted():
                info = await self.service.model_info(request.model_name, request.model_version)
                model = info.name
                inputs, outputs = tensors_from_proto(request)
                prediction = await self.service.predict(info, inputs, outputs)
            context.set_trailing_metadata((("x-cache", "HIT" if prediction.cache_hit else "MISS"),))
            status = "200"
            return proto_response(prediction, request.id)
        except GatewayError as error:
            status = str(error.status)
            await context.abort(error.grpc_code, error.message)
        finally:
            metrics.REQUEST_DURATION.labels(ROUTE).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(model, ROUTE, status).inc()


def create_server(service: PredictionService, settings: Settings) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),  # several gateway workers share the port
            ("grpc.max_send_message_length", 2**31 - 1),
            ("grpc.max_receive_message_length", settings.max_body_bytes),
        ]
    )
    servicer = InferenceServicer(service, settings)
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=getattr(service_pb2, f"{name}Request").FromString,
            response_serializer=getattr(service_pb2, f"{name}Response").SerializeToString,
        )
        for name in PROXIED_METHODS
    }
    # ModelInfer decodes its own request, so garbage gets INVALID_ARGUMENT rather than UNKNOWN.
    handlers["ModelInfer"] = grpc.unary_unary_rpc_method_handler(
        servicer.ModelInferBytes, response_serializer=service_pb2.ModelInferResponse.SerializeToString
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    return server
