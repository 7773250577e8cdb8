"""The HTTP front end (FastAPI): /predict, health, readiness and metrics."""

from __future__ import annotations

import hmac
import time
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from gateway import metrics
from gateway.cache import PredictionCache
from gateway.errors import GatewayError
from gateway.service import Prediction, PredictionService
from gateway.settings import Settings, get_settings
from gateway.tensors import Tensor, TensorError, tensor_from_values
from gateway.triton import TritonPool
from gateway.validation import check_input_names


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class PredictRequest(BaseModel):
    model: str = Field(description="Model name in the Triton repository.", examples=["digits"])
    version: str = Field("", description="Model version; empty for the latest.")
    inputs: dict[str, Any] = Field(
        description="Input name -> nested array of values, batch dimension first.",
        examples=[{"image": [[[[0.0] * 8] * 8]]}],
    )
    outputs: list[str] | None = Field(None, description="Outputs to return; all when omitted.")


class PredictResponse(BaseModel):
    model: str
    model_version: str
    outputs: dict[str, Any]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        triton = TritonPool(settings.triton_url, settings.triton_timeout_ms, settings.model_info_ttl_s)
        cache = PredictionCache(
            settings.redis_url, settings.redis_timeout_ms, settings.cache_max_value_bytes,
            settings.redis_retry_after_s,
        )
        app.state.service = PredictionService(settings, triton, cache)
        yield
        await triton.close()
        await cache.close()

    app = FastAPI(
        title="Triton serving gateway",
        version="0.1.0",
        description="Content-keyed Redis prediction cache and request coalescing in front of Triton.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )

    async def require_api_key(request: Request) -> None:
        if not settings.api_keys:
            return
        given = request.headers.get("x-api-key", "").encode()
        if not any(hmac.compare_digest(given, key.encode()) for key in settings.api_keys):
            raise GatewayError(401, "missing or invalid X-API-Key")

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, error: GatewayError) -> Response:
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return JSONResponse({"error": "invalid request", "details": problems}, status_code=400)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={400: {}, 401: {}, 404: {}, 413: {}, 429: {}, 503: {}, 504: {}},
        dependencies=[Depends(require_api_key)],
        summary="Predict with a model; answered from the cache when the same input was seen.",
    )
    async def predict(body: PredictRequest, request: Request) -> Response:
        service: PredictionService = request.app.state.service
        info = await service.model_info(body.model, body.version)
        request.state.model = info.name  # only known models become label values
        check_input_names(info, list(body.inputs))
        try:
            inputs = [
                tensor_from_values(name, info.inputs[name].datatype, values)
                for name, values in body.inputs.items()
            ]
        except TensorError as error:
            raise GatewayError(400, str(error)) from None
        prediction = await service.predict(info, inputs, body.outputs)
        return _predict_response(prediction)

    @app.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: Triton and Redis answer.", responses={503: {}})
    async def readyz(request: Request) -> Response:
        service: PredictionService = request.app.state.service
        triton_ok = await service.triton.ready()
        redis_ok = await service.cache.ping()
        body = {"triton": triton_ok, "redis": redis_ok}
        return JSONResponse(body, status_code=200 if triton_ok and redis_ok else 503)

    @app.get("/metrics", summary="Prometheus metrics.")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        route = request.url.path
        if route in ("/metrics", "/healthz", "/readyz"):
            return await call_next(request)
        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        try:
            response = await call_next(request)
        finally:
            metrics.IN_FLIGHT.dec()
        metrics.REQUEST_DURATION.labels(route).observe(time.perf_counter() - started)
        model = request.scope.get("state", {}).get("model", "")
        metrics.REQUESTS.labels(model, route, str(response.status_code)).inc()
        return response

    return app


def _predict_response(prediction: Prediction) -> Response:
    body = {
        "model": prediction.model,
        "model_version": prediction.version,
        "outputs": {name: _json_values(t) for name, t in prediction.outputs.items()},
    }
    return JSONResponse(body, headers={"X-Cache": "HIT" if prediction.cache_hit else "MISS"})


def _json_values(tensor: Tensor) -> Any:
    if tensor.datatype == "BYTES":
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(tensor.array).tolist()
    return tensor.array
