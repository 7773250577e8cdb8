"""The Python gateway (HTTP) answers every request of the conformance corpus as it says: status,
message, headers, the key and value stored, what reaches Triton, what is counted; and reads its
settings as the corpus says. gateway-grpc/corpus_test.go replays the gRPC requests of the same file.

The gateway's own code runs unchanged (FastAPI app, Triton client over gRPC, coalescer, codec);
Triton is tests/conformance/triton_standin.py and Redis a dict (pure logic: the integration tests
run the real processes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from prometheus_client import REGISTRY
from pydantic import ValidationError
from pydantic_settings import SettingsError

from gateway.app import create_app
from gateway.settings import Settings
from tests.conformance.corpus import CORPUS, HTTP_FORMS
from tests.conformance.triton_standin import TritonStandIn, serve

DOCUMENT = json.loads(CORPUS.read_text())
HTTP_REQUESTS = [
    pytest.param(case, request, id=f"{case['name']} [{request['form']}]")
    for case in DOCUMENT["requests"]
    for request in case["requests"]
    if request["form"] in HTTP_FORMS
]


class DictRedis:
    """The parts of redis.asyncio.Redis the cache uses, over a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ex: int | None = None) -> bool:
        self.values[key] = value
        return True

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.values.get(key) for key in keys]

    def pipeline(self, transaction: bool = True) -> DictPipeline:
        return DictPipeline(self)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


class DictPipeline:
    """redis.asyncio's pipeline over DictRedis: SETs queued, written by execute()."""

    def __init__(self, redis: DictRedis) -> None:
        self.redis = redis
        self.queued: list[tuple[str, bytes]] = []

    async def __aenter__(self) -> DictPipeline:
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    def set(self, key: str, value: bytes, ex: int | None = None) -> None:
        self.queued.append((key, value))

    async def execute(self) -> list[bool]:
        self.redis.values.update(self.queued)
        return [True] * len(self.queued)


class Gateway:
    """The app in this process, its stand-in Triton and its dict Redis."""

    def __init__(self, client: httpx.AsyncClient, app, standin: TritonStandIn) -> None:
        self.client = client
        self.service = app.state.service
        self.standin = standin
        self.redis = DictRedis()
        self.service.cache.client = self.redis

    async def settled(self) -> None:
        """Until no key is in flight or held for its store (the answer is stored, or not)."""
        deadline = time.monotonic() + 10
        while len(self.service.coalescer) + len(self.service.row_cache.flights):
            assert time.monotonic() < deadline, "a key stayed in flight"
            await asyncio.sleep(0.001)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway():
    standin = TritonStandIn(DOCUMENT["models"])
    server, address = serve(standin)
    settings = Settings(triton_url=[address], redis_retry_after_s=0.0, model_info_ttl_s=3600)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield Gateway(client, app, standin)
    finally:
        server.stop(grace=None)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counters(case: dict) -> tuple[float, float]:
    return (
        counted("gateway_queue_rejections_total", reason=case["queue_rejection"] or "-"),
        counted(
            "gateway_cache_bypassed_total",
            model=case["model"],
            reason=case["cache_bypassed"] or "-",
        ),
    )


async def send(gateway: Gateway, request: dict) -> httpx.Response:
    if "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
    else:
        body = request["body"].encode()
    return await gateway.client.post(request["path"], content=body, headers=request["headers"])


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("case", "request_"), HTTP_REQUESTS)
async def test_the_python_gateway_answers_as_the_corpus_says(gateway, case, request_):
    gateway.standin.answer_with(case["triton"])
    gateway.redis.values = decoded(case.get("seeded", {}))
    before = counters(case)
    response = await send(gateway, request_)
    expect = request_["expect"]
    error = response.json().get("error", "") if response.status_code != 200 else ""
    assert (response.status_code, error) == (expect["status"], expect["message"]), response.text
    for header, value in expect["headers"].items():
        assert response.headers.get(header) == value, header
    await gateway.settled()
    stored = {case["key"]: base64.b64decode(case["value"])} if case["key"] else {}
    assert gateway.redis.values == (decoded(case["rows"]) if "rows" in case else stored)
    received = gateway.standin.received
    assert len(received) == (1 if case["triton"] else 0)
    if received:
        parameters = json_format.MessageToDict(received[0], preserving_proto_field_name=True)
        assert parameters.get("parameters", {}) == case["forwarded_parameters"]
    if received and "triton_inputs" in case:
        sent = zip(received[0].inputs, received[0].raw_input_contents, strict=True)
        assert {i.name: raw for i, raw in sent} == decoded(case["triton_inputs"])
    after = counters(case)
    assert [b - a for a, b in zip(before, after, strict=True)] == [
        1.0 if case["queue_rejection"] else 0.0,
        1.0 if case["cache_bypassed"] else 0.0,
    ]
    if case["key"] or (case.get("rows") and not case["cache_bypassed"]):
        again = await send(gateway, request_)
        assert (again.status_code, again.headers["X-Cache"]) == (200, "HIT")
        assert len(gateway.standin.received) == (1 if case["triton"] else 0)


def decoded(values: dict[str, str]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in values.items()}


@pytest.mark.parametrize("case", DOCUMENT["settings"], ids=lambda c: c["name"])
def test_the_python_gateway_reads_its_settings_as_the_corpus_says(monkeypatch, case):
    for name in [n for n in os.environ if n.upper().startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in case["env"].items():
        monkeypatch.setenv(name, value)
    if "error" in case:
        with pytest.raises((ValidationError, SettingsError)) as raised:
            Settings()
        assert case["error"] in str(raised.value)
    else:
        assert Settings().model_dump() == case["settings"]
