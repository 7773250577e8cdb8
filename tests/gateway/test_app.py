"""The HTTP front end with stand-ins for Triton and the Redis client (pure logic): a Redis client
that raises anything never costs a request its answer."""

import itertools

import httpx
import numpy as np
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.tensors import Tensor
from tests.gateway.test_cache import FAILURES, FailingRedis
from tests.gateway.test_service import INFO


class Triton:
    async def model_info(self, model, version=""):
        return INFO

    async def infer(self, info, inputs, outputs, parameters=None):
        total = inputs[0].array.sum(axis=1, keepdims=True)
        return {"logits": Tensor("logits", "FP32", total.astype(np.float32))}

    async def close(self):
        pass


class EveryFailure(FailingRedis):
    """Raises each of the FAILURES in turn."""

    def __init__(self) -> None:
        self.errors = itertools.cycle(FAILURES)

    @property
    def error(self):
        return next(self.errors)

    async def aclose(self):
        pass


@pytest.fixture
async def client():
    app = create_app(Settings(redis_retry_after_s=0.0, triton_url=["127.0.0.1:1"]))
    async with app.router.lifespan_context(app):
        app.state.service.triton = Triton()
        app.state.service.cache.client = EveryFailure()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def test_any_exception_of_the_redis_client_still_answers_200(client):
    for i in range(3 * len(FAILURES)):
        image = [[float(i), 1.0]]
        simple = await client.post("/predict", json={"model": "digits", "inputs": {"image": image}})
        v2 = await client.post(
            "/v2/models/digits/infer",
            json={
                "inputs": [{"name": "image", "shape": [1, 2], "datatype": "FP32", "data": image}]
            },
        )
        assert (simple.status_code, v2.status_code) == (200, 200), (simple.text, v2.text)
        assert simple.json()["outputs"]["logits"] == [[i + 1.0]]
        assert simple.headers["X-Cache"] == "MISS"
