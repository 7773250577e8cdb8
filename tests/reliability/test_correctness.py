"""Never a stale or wrong cached answer."""

from __future__ import annotations

import shutil
import signal

import httpx
import hypothesis.extra.numpy as hnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from conversion.repository import fingerprint
from conversion.triton_config import read_config, write_config
from gateway.cache import PredictionCache
from gateway.errors import GatewayError
from gateway.service import PredictionService
from gateway.settings import Settings
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TensorInfo
from localstack.processes import wait_until
from tests.conftest import start_stack, until_hit

images = hnp.arrays(
    np.float32,
    (1, 1, 8, 8),
    elements=st.floats(0, 1, width=32, allow_nan=False, allow_subnormal=False),
)


@pytest.mark.integration
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=images, route=st.sampled_from(["/predict", "/v2/models/digits/infer"]))
def test_a_cached_answer_is_byte_equal_to_the_fresh_one(stack, image, route):
    if route == "/predict":
        body = {"model": "digits", "inputs": {"image": image.tolist()}}
    else:
        body = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 1, 8, 8],
                    "datatype": "FP32",
                    "data": image.ravel().tolist(),
                }
            ]
        }
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        first = client.post(route, json=body)
        second = until_hit(lambda: client.post(route, json=body), lambda r: r.headers["X-Cache"])
    assert first.status_code == second.status_code == 200
    assert first.content == second.content


def shifted_copy(model_path, target, shift: float) -> None:
    """The same network with `shift` added to the last layer's bias: a visibly different model."""
    model = onnx.load(str(model_path))
    bias = [i for i in model.graph.initializer if i.dims == [10]][-1]
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + shift, bias.name))
    onnx.save(model, str(target))


@pytest.mark.integration
def test_a_model_redeployed_under_the_same_version_never_answers_from_the_old_cache(
    tmp_path, model_repository
):
    repository = tmp_path / "repo"
    shutil.copytree(model_repository / "digits", repository / "digits")
    stack = start_stack(tmp_path / "run", repository, GATEWAY_MODEL_INFO_TTL_S="0.2")
    try:
        image = np.random.default_rng(5).random((1, 1, 8, 8), dtype=np.float32)
        body = {"model": "digits", "inputs": {"image": image.tolist()}}
        old = stack.predict(body).json()["outputs"]["logits"]
        until_hit(lambda: stack.predict(body), lambda r: r.headers["X-Cache"])

        model_file = repository / "digits/1/model.onnx"
        shifted_copy(model_file, model_file, shift=5.0)
        config = read_config(repository / "digits/config.pbtxt")
        config.parameters["fingerprint"].string_value = fingerprint(model_file)
        write_config(config, repository / "digits/config.pbtxt")
        stack.local.reload_model("digits")

        # the gateway re-reads the config within GATEWAY_MODEL_INFO_TTL_S: the new fingerprint's key
        assert wait_until(lambda: stack.predict(body).headers["X-Cache"] == "MISS", 10)
        fresh = stack.predict(body)
        expected = ort.InferenceSession(str(model_file)).run(None, {"image": image})[0]
        assert np.allclose(fresh.json()["outputs"]["logits"], expected, atol=1e-4)
        assert np.allclose(
            np.array(fresh.json()["outputs"]["logits"]) - np.array(old), 5.0, atol=1e-3
        )
    finally:
        stack.local.stop()


@pytest.mark.integration
def test_no_entry_is_written_for_a_failed_request(make_stack):
    stack = make_stack(GATEWAY_MODEL_INFO_TTL_S="0")  # every request asks Triton first
    cache = redis.Redis(port=stack.redis_port)
    stored = {"model": "digits", "inputs": {"image": np.zeros((1, 1, 8, 8)).tolist()}}
    until_hit(lambda: stack.predict(stored), lambda r: r.headers["X-Cache"])  # its write landed
    keys = cache.dbsize()
    stack.local.stop_component("triton", signal.SIGKILL)
    failed = stack.predict({"model": "digits", "inputs": {"image": np.ones((1, 1, 8, 8)).tolist()}})
    assert failed.status_code == 503
    assert cache.dbsize() == keys


class PartialTriton:
    """Pure-logic stand-in: answers with one of the two outputs the model has."""

    async def infer(self, info, inputs, outputs, parameters=None):
        return {"logits": Tensor("logits", "FP32", np.zeros((1, 10), np.float32))}


@pytest.mark.integration
async def test_a_partial_response_is_refused_and_not_cached(make_stack):
    stack = make_stack()
    cache = PredictionCache(stack.redis_url, 200, 1 << 20, 1.0)
    info = ModelInfo(
        name="two_outputs",
        version="1",
        fingerprint="x",
        max_batch_size=8,
        inputs={"image": TensorInfo("image", "FP32", (-1, 1, 8, 8))},
        outputs={
            "logits": TensorInfo("logits", "FP32", (-1, 10)),
            "probs": TensorInfo("probs", "FP32", (-1, 10)),
        },
    )
    service = PredictionService(Settings(), PartialTriton(), cache)
    with pytest.raises(GatewayError) as raised:
        await service.predict(info, [Tensor("image", "FP32", np.zeros((1, 1, 8, 8), np.float32))])
    assert raised.value.status == 502
    assert await cache.client.dbsize() == 0
    await cache.close()
