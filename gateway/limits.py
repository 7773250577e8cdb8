"""Pure ASGI middleware (no per-request task, unlike @app.middleware): body limit and metrics."""

from __future__ import annotations

import time

import orjson

from gateway import metrics

UNOBSERVED = ("/metrics", "/healthz", "/readyz")


def too_large(max_bytes: int, grpc_port: int, decompressed: bool = False) -> str:
    """The 413's message: the limit, and the three ways past it (issue 15: a batch of images as
    JSON numbers outgrows a limit its binary form fits in)."""
    after = " once decompressed" if decompressed else ""
    return (
        f"request body larger than {max_bytes} bytes{after} (GATEWAY_MAX_BODY_BYTES). Send the "
        "tensors as binary data instead of JSON numbers: the KServe v2 binary tensor data "
        "extension (POST /v2/models/<model>/infer; tritonclient.http's default) is about 4x "
        f"smaller for FP32; or over gRPC (gateway-grpc, port {grpc_port}: raw bytes, each "
        "message up to the same limit); or raise GATEWAY_MAX_BODY_BYTES."
    )


class RequestMetrics:
    """Counts requests by model, route template and status, and times them (seconds).

    /metrics, /healthz and /readyz are not observed; a request whose handler raises before
    answering counts as status 500.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in UNOBSERVED:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def observing_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUEST_DURATION.labels(route).observe(time.perf_counter() - started)
            model = scope.get("state", {}).get("model", "")
            metrics.REQUESTS.labels(model, route, str(status)).inc()


class BodySizeLimit:
    """Answers 413 before a body over `max_bytes` is buffered (declared or streamed), with the
    ways past the limit (`too_large`). The bytes counted are those sent, before any content
    coding is undone (content_coding.decoded_body bounds the inflated size)."""

    def __init__(self, app, max_bytes: int, grpc_port: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = orjson.dumps({"error": too_large(max_bytes, grpc_port)})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        received = 0
        too_large = False

        async def limited_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)
        except Exception:
            if too_large and not started:
                await self._reject(send)
            else:
                raise

    async def _reject(self, send) -> None:
        body = self.message
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
