"""The whole data path on real processes: gateway -> Redis -> Triton, for the digits model."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from benchmarks.scrape import scrape, value
from conversion import digits
from tests.conftest import until_hit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    return digits.load_data().test_x


def test_one_image_is_classified_like_the_onnx_model_and_cached_on_the_second_call(
    stack, model_repository, test_images
):
    # the cache is per row: an image another test sent inside a batch (test_serving sends the
    # first 64) would already be a HIT here, so this one is sent by this test alone
    image = test_images[64:65]
    session = ort.InferenceSession(str(model_repository / "digits/1/model.onnx"))
    expected_class = int(np.argmax(session.run(None, {"image": image})[0]))
    payload = {"model": "digits", "inputs": {"image": image.tolist()}}

    first = stack.predict(payload)
    second = until_hit(lambda: stack.predict(payload), lambda r: r.headers["X-Cache"])

    assert first.status_code == 200, first.text
    assert first.headers["X-Cache"] == "MISS"
    assert first.json() == second.json()
    assert first.json()["model_version"] == "1"
    assert int(np.argmax(first.json()["outputs"]["logits"][0])) == expected_class


def test_concurrent_distinct_requests_are_batched_by_triton(stack, test_images):
    before = scrape(stack.triton_metrics_url)
    images = test_images[100:164]
    assert len(images) == 64

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/predict", json={"model": "digits", "inputs": {"image": [img.tolist()]}}
                    )
                    for img in images
                )
            )

    responses = asyncio.run(send_all())
    after = stack.triton_metrics_once(
        lambda s: (
            value(s, "nv_inference_count", model="digits")
            >= value(before, "nv_inference_count", model="digits") + 64
        )
    )

    assert [r.status_code for r in responses] == [200] * 64
    assert {r.headers["X-Cache"] for r in responses} == {"MISS"}
    inferences = value(after, "nv_inference_count", model="digits") - value(
        before, "nv_inference_count", model="digits"
    )
    executions = value(after, "nv_inference_exec_count", model="digits") - value(
        before, "nv_inference_exec_count", model="digits"
    )
    assert inferences == 64
    assert executions < inferences
