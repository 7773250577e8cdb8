"""The HTTP front end (FastAPI): /predict, the KServe v2 HTTP routes, health, readiness, metrics.

The KServe v2 gRPC service is served by gateway-grpc (native code, gateway-grpc/), with the same
cache keys and values, so both front ends share one cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from gateway import metrics
from gateway.affinity import pin_worker
from gateway.cache import PredictionCache
from gateway.content_coding import decoded_body, encoded, response_coding
from gateway.errors import MAX_LISTED, GatewayError
from gateway.json_values import check_literal_overflow, json_values
from gateway.kserve import (
    HEADER_LENGTH,
    V2InferRequest,
    V2InferResponse,
    check_json_outputs,
    infer_call,
    infer_response,
    json_values_of,
    split_body,
)
from gateway.kserve_routes import ModelName, VersionName, add_kserve_routes
from gateway.limits import BodySizeLimit, RequestMetrics, too_large
from gateway.service import Prediction, PredictionService
from gateway.settings import Settings, get_settings
from gateway.tensors import TensorError, tensor_from_values
from gateway.triton_client import TritonPool
from gateway.validation import check_input_names

DNS_REFRESH_S = 30.0
ERRORS = {
    code: {"description": text}
    for code, text in {
        400: "Invalid request (the message says what is wrong)",
        401: "Missing or invalid X-API-Key",
        404: "Unknown model or version",
        413: "Request body too large (after decompression); the message names the ways past the "
        "limit: binary tensor data, gRPC, or GATEWAY_MAX_BODY_BYTES",
        415: "Unsupported Content-Encoding (gzip, deflate and identity are)",
        429: "Too many requests in flight, or the model's queue is full (see Retry-After)",
        502: "Triton failed the request",
        503: "Triton unavailable (see Retry-After)",
        504: "Inference deadline exceeded",
    }.items()
}
Body = TypeVar("Body", bound=BaseModel)
VARIANT_SUFFIX = re.compile(r"_(fp16|int8|trt_fp16|trt_int8)(?=_text$|$)")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json(content)


class PredictRequest(BaseModel):
    """A /predict body; any other key (e.g. `model_version`, `parameters`) is a 400 naming it, as
    the KServe routes refuse unknown request parameters rather than ignore them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name in the Triton repository.", examples=["digits"])
    version: str = Field("", description="Model version; empty for the latest.")
    inputs: dict[str, Any] = Field(
        description="Input name -> nested array of values, batch dimension first; "
        "the datatype is the model's.",
        examples=[{"image": [[[[0.0] * 8] * 8]]}],
    )
    outputs: list[str] | None = Field(None, description="Outputs to return; all when omitted.")


class PredictResponse(BaseModel):
    model: str
    model_version: str
    outputs: dict[str, Any] = Field(
        description="Output name -> nested array, batch dimension first."
    )


class ModelSummary(BaseModel):
    name: str
    base_model: str
    version: str
    state: str
    ready: bool


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pin_worker(settings.cpus)  # before gRPC's client threads start, so they inherit it
        triton = TritonPool(
            settings.triton_url, settings.triton_timeout_ms, settings.model_info_ttl_s
        )
        cache = PredictionCache(
            settings.redis_url,
            settings.redis_timeout_ms,
            settings.cache_max_value_bytes,
            settings.redis_retry_after_s,
        )
        service = PredictionService(settings, triton, cache)
        app.state.service = service
        refresher = asyncio.create_task(_refresh_endpoints(triton))
        yield
        refresher.cancel()
        await triton.close()
        await cache.close()
        metrics.worker_exiting()

    app = FastAPI(
        title="Triton serving gateway",
        version="0.1.0",
        description="Content-keyed Redis prediction cache and request coalescing in front of Triton. "
        "The same cache serves /predict, the KServe v2 HTTP routes and the KServe v2 gRPC service "
        "(gateway-grpc).",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, grpc_port=settings.grpc_port
    )
    inflated_too_large = too_large(settings.max_body_bytes, settings.grpc_port, decompressed=True)
    app.add_middleware(RequestMetrics)

    def require_api_key(request: Request) -> None:
        if not settings.key_accepted(request.headers.get("x-api-key", "")):
            raise GatewayError(401, "missing or invalid X-API-Key")

    protected = [Depends(require_api_key)]

    async def request_body(request: Request) -> bytes:
        """The body without its content coding (gzip, deflate), within the body limit; a client
        that goes away before sending all of it is counted as 499 (nginx's "client closed
        request"), not as a fault of the gateway."""
        try:
            body = await request.body()
        except ClientDisconnect:
            raise GatewayError(499, "the client closed the connection during the body") from None
        return decoded_body(
            body,
            request.headers.get("content-encoding"),
            settings.max_body_bytes,
            inflated_too_large,
        )

    def parsed(model: type[Body], data: bytes) -> Body:
        """pydantic-core reads the JSON directly, without the stdlib json pass and dependency
        solving of a declared body."""
        try:
            return model.model_validate_json(data)
        except ValidationError as error:
            errors = [{**e, "loc": ("body", *e["loc"]), "msg": _problem(e)} for e in error.errors()]
            raise RequestValidationError(errors) from None

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, error: GatewayError) -> Response:
        headers = dict(error.headers)
        if error.retry_after_s:
            headers["Retry-After"] = str(error.retry_after_s)
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        shown = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            shown.append(f"and {len(problems) - MAX_LISTED} more")
        message = f"invalid request: {'; '.join(shown)}"
        return JSONResponse({"error": message, "details": shown}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, error: StarletteHTTPException) -> Response:
        """A route the gateway does not serve (404) or a method it does not take (405), in the
        KServe v2 / Triton error body `{"error": ...}` that tritonclient decodes, with Triton's
        words ("Not Found", "Method Not Allowed")."""
        return JSONResponse(
            {"error": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        """A fault of the gateway itself (a bug: every input has its 4xx), answered in the same
        `{"error": ...}` body; the traceback goes to the log."""
        return JSONResponse({"error": "internal error"}, status_code=500)

    def service_of(request: Request) -> PredictionService:
        return request.app.state.service

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        openapi_extra=json_body(PredictRequest),
        summary="Predict with a model; answered from the cache when the same input was seen.",
    )
    async def predict(request: Request) -> Response:
        require_api_key(request)
        raw = await request_body(request)
        body = parsed(PredictRequest, raw)
        service = service_of(request)
        async with service.admitted():
            info = await service.model_info(body.model, body.version)
            request.state.model = info.name  # only known models become label values
            check_input_names(info, list(body.inputs))
            booleans = _has_booleans(raw)
            try:
                inputs = [
                    tensor_from_values(name, info.inputs[name].datatype, values, None, booleans)
                    for name, values in body.inputs.items()
                ]
            except TensorError as error:
                raise GatewayError(400, str(error)) from None
            check_literal_overflow(raw, inputs, lambda document, name: document["inputs"][name])
            prediction = await service.predict(info, inputs, body.outputs)
        body_out = {
            "model": prediction.model,
            "model_version": prediction.version,
            "outputs": {n: json_values(t.array, t.datatype) for n, t in prediction.outputs.items()},
        }
        return _answer(request, _json(body_out), prediction)

    async def v2_infer(model: str, version: str, request: Request) -> Response:
        """Triton's order: the model (a 404 whatever the body says), then the body's tensors."""
        require_api_key(request)
        body = await request_body(request)
        service = service_of(request)
        async with service.admitted():
            info = await service.model_info(model, version)
            request.state.model = info.name
            head, binary = split_body(body, request.headers.get(HEADER_LENGTH))
            call = infer_call(parsed(V2InferRequest, head), binary, _has_booleans(head))
            check_literal_overflow(head, call.inputs, json_values_of)
            check_json_outputs(info, call)
            prediction = await service.predict(info, call.inputs, call.outputs, call.parameters)
        content, header_length = infer_response(prediction, call)
        if header_length is None:
            return _answer(request, content, prediction)
        return _answer(
            request,
            content,
            prediction,
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(header_length)},
        )

    @app.post(
        "/v2/models/{model}/infer",
        response_model=V2InferResponse,
        responses=ERRORS,
        openapi_extra=json_body(V2InferRequest),
        summary="KServe v2 inference (JSON or binary tensors), cached.",
    )
    async def infer_latest(model: ModelName, request: Request) -> Response:
        return await v2_infer(model, "", request)

    @app.post(
        "/v2/models/{model}/versions/{version}/infer",
        response_model=V2InferResponse,
        responses=ERRORS,
        openapi_extra=json_body(V2InferRequest),
        summary="KServe v2 inference of one version.",
    )
    async def infer_version(model: ModelName, version: VersionName, request: Request) -> Response:
        return await v2_infer(model, version, request)

    add_kserve_routes(
        app,
        lambda request: service_of(request).triton,
        JSONResponse,
        protected,
        lambda request, model: service_of(request).settings.ttl_for(model),
    )

    @app.get(
        "/v1/models",
        response_model=list[ModelSummary],
        responses=ERRORS,
        dependencies=protected,
        summary="Models in the repository, grouped by base model, with readiness.",
    )
    async def list_models(request: Request) -> Response:
        index = await service_of(request).triton.call("get_model_repository_index", as_json=True)
        models = [
            ModelSummary(
                name=m["name"],
                base_model=VARIANT_SUFFIX.sub("", m["name"]),
                version=m.get("version", ""),
                state=m.get("state", "UNKNOWN"),
                ready=m.get("state") == "READY",
            ).model_dump()
            for m in index.get("models", [])
        ]
        return JSONResponse(models)

    @app.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: a Triton endpoint is ready (Redis is reported, not required).",
        responses={503: {}},
    )
    async def readyz(request: Request) -> Response:
        """Ready when Triton is: without Redis the gateway still answers (uncached), and taking it
        out of the load balancer then would turn a cache outage into a serving outage."""
        service = service_of(request)
        triton_ok, redis_ok = await asyncio.gather(service.triton.ready(), service.cache.ping())
        body = {"triton": triton_ok, "redis": redis_ok}
        return JSONResponse(body, status_code=200 if triton_ok else 503)

    @app.get("/metrics", summary="Prometheus metrics.")
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    _document_bodies(app, (PredictRequest, V2InferRequest))
    return app


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that parses `model` itself."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _document_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add the self-parsed body models (and the models they nest) to the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _, definitions = models_json_schema(
                [(model, "validation") for model in models],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                definitions["$defs"]
            )
        return app.openapi_schema

    app.openapi = openapi


def _problem(error: dict[str, Any]) -> str:
    """pydantic's words for one problem of a body, clearer where JSON text holds a lone UTF-16
    surrogate (e.g. "\\ud800"), which is no character (Triton's parser refuses it too)."""
    if error["type"] == "json_invalid" and "hex escape" in error["msg"]:
        return f"a \\u escape is a lone surrogate (U+D800..U+DFFF), no character ({error['msg']})"
    return error["msg"]


def _has_booleans(body: bytes) -> bool:
    """Whether a JSON body holds true or false anywhere (else numbers need no search for them)."""
    return b"true" in body or b"false" in body


def _json(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _answer(
    request: Request,
    content: bytes,
    prediction: Prediction,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    """An inference answer with X-Cache (and X-Cache-Hit-Rows for a per-row cached model), compressed when the client accepts it (as Triton does)."""
    headers = {"X-Cache": prediction.cache_state, **(headers or {})}
    if prediction.rows_from_cache is not None:
        headers["X-Cache-Hit-Rows"] = str(prediction.rows_from_cache)
    coding = response_coding(request.headers.get("accept-encoding"))
    if coding != "identity":
        content = encoded(content, coding)
        headers["Content-Encoding"] = coding
    return Response(content, media_type=media_type, headers=headers)


async def _refresh_endpoints(triton: TritonPool) -> None:
    """Re-resolve Triton's DNS name now and then: pods come and go behind a headless Service."""
    while True:
        await asyncio.sleep(DNS_REFRESH_S)
        with contextlib.suppress(Exception):
            await triton.refresh_endpoints()
