"""The KServe v2 HTTP routes Triton answers itself: health, server and model metadata, model
readiness, config and statistics. Each is forwarded to Triton over gRPC and written as Triton's
HTTP API writes it (gateway.triton_json), so `tritonclient.http` pointed at the gateway works
unchanged; status codes are Triton's (src/http_server.cc, 2.51): 200, or 400 when not ready.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.params import Depends
from fastapi.responses import Response

from gateway.errors import GatewayError
from gateway.model_names import canonical_version, check_model_name
from gateway.triton_client import TritonPool
from gateway.triton_json import message_json

# The KServe v2 / Triton protocol extensions the gateway serves (Triton's docs/protocol/): server
# metadata lists those of Triton's that are among them. Not served, so not listed:
# model_repository (and its unload_dependents), system_shared_memory, cuda_shared_memory, trace,
# logging (routes the gateway has not), sequence (sequence_id is refused as an unknown parameter),
# classification (the classification output parameter is refused), parameters (request
# parameters other than priority and timeout are refused). gateway-grpc lists the same but the
# HTTP-only binary_tensor_data (generated from here by gateway-grpc/messages.py).
SERVED_EXTENSIONS = ("schedule_policy", "model_configuration", "binary_tensor_data", "statistics")
GRPC_EXTENSIONS = tuple(name for name in SERVED_EXTENSIONS if name != "binary_tensor_data")
ModelName = Annotated[str, Path(description="Model name.", examples=["digits"])]
VersionName = Annotated[str, Path(description="Model version.", examples=["1"])]


def add_kserve_routes(
    app: FastAPI,
    triton_of: Callable[[Request], TritonPool],
    json_response: Callable[..., Response],
    protected: list[Depends],
    cache_ttl_s: Callable[[Request, str], int] = lambda request, model: 0,
) -> None:
    """Register the routes on `app`; `protected` checks the API key (health stays open);
    `cache_ttl_s(request, model)` is the gateway's cache TTL of a model (0: not cached)."""

    async def forward(request: Request, method: str, *args: Any) -> Any:
        triton = triton_of(request)
        return await triton.call(method, *args, client_timeout=triton.timeout_s)

    @app.get("/v2/health/live", summary="KServe v2 liveness: the gateway answers.")
    async def live() -> Response:
        return Response(status_code=200)

    @app.get(
        "/v2/health/ready", summary="KServe v2 readiness: a Triton endpoint is ready (400 if not)."
    )
    async def ready(request: Request) -> Response:
        return Response(status_code=200 if await triton_of(request).ready() else 400)

    @app.get(
        "/v2",
        dependencies=protected,
        summary="KServe v2 server metadata: Triton's, listing the extensions the gateway serves.",
    )
    async def server_metadata(request: Request) -> Response:
        metadata = message_json(await forward(request, "get_server_metadata"))
        metadata["extensions"] = served_extensions(metadata.get("extensions", []))
        return json_response(metadata)

    @app.get("/v2/models/stats", dependencies=protected, summary="Statistics of every model.")
    async def all_statistics(request: Request) -> Response:
        return json_response(message_json(await forward(request, "get_inference_statistics")))

    async def metadata(request: Request, model: str, version: str) -> Response:
        return json_response(
            message_json(await forward(request, "get_model_metadata", model, version))
        )

    async def model_ready(request: Request, model: str, version: str) -> Response:
        if not await forward(request, "is_model_ready", model, version):
            raise GatewayError(400, "Model version not ready")
        return Response(status_code=200)

    async def config(request: Request, model: str, version: str) -> Response:
        """Triton's config; a model whose answers the gateway caches (it has a fingerprint and a
        TTL) is marked `response_cache.enable`, as Triton marks its own response cache: a hit
        never reaches Triton's statistics, and perf_analyzer without -x finds the version it
        measures from them unless the config says a cache answers (perf_analyzer's
        inference_profiler.cc, DetermineStatsModelVersion)."""
        config = (await forward(request, "get_model_config", model, version)).config
        if "fingerprint" in config.parameters and cache_ttl_s(request, config.name) > 0:
            config.response_cache.enable = True
        return json_response(message_json(config))

    async def statistics(request: Request, model: str, version: str) -> Response:
        return json_response(
            message_json(await forward(request, "get_inference_statistics", model, version))
        )

    for suffix, handle, summary in (
        ("/ready", model_ready, "KServe v2 model readiness (400 if not ready)."),
        ("/config", config, "The model's configuration, as Triton's HTTP API writes it."),
        ("/stats", statistics, "The model's inference statistics (Triton's)."),
        ("", metadata, "KServe v2 model metadata (Triton's; shapes as integers)."),
    ):
        _add_model_route(app, suffix, handle, summary, protected)


def served_extensions(triton_extensions: list[str]) -> list[str]:
    """Triton's extensions (in its order) that the gateway serves too (SERVED_EXTENSIONS)."""
    return [name for name in triton_extensions if name in SERVED_EXTENSIONS]


def _add_model_route(
    app: FastAPI,
    suffix: str,
    handle: Callable[[Request, str, str], Awaitable[Response]],
    summary: str,
    protected: list[Depends],
) -> None:
    """GET /v2/models/{model}<suffix> and /v2/models/{model}/versions/{version}<suffix>."""

    async def latest(model: ModelName, request: Request) -> Response:
        check_model_name(model)
        return await handle(request, model, "")

    async def versioned(model: ModelName, version: VersionName, request: Request) -> Response:
        check_model_name(model)
        return await handle(request, model, canonical_version(version))

    for path, endpoint in (
        (f"/v2/models/{{model}}{suffix}", latest),
        (f"/v2/models/{{model}}/versions/{{version}}{suffix}", versioned),
    ):
        app.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            dependencies=protected,
            summary=summary,
            name=f"{handle.__name__}_{endpoint.__name__}",
        )
