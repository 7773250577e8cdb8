"""The served variants in the real local Triton (fixture `stack`), through the gateway."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from benchmarks.scrape import scrape, value
from conversion import digits, minilm

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def encoder():
    return minilm.load_model(), minilm.load_tokenizer()


def _embed(encoder, sentences):
    model, tokenizer = encoder
    feed = minilm.tokenize(tokenizer, sentences)
    with torch.no_grad():
        return model(*(torch.from_numpy(v) for v in feed.values())).numpy()


def test_a_sentence_is_embedded_by_the_text_ensemble_like_in_process(stack, encoder):
    sentence = "The harbour was quiet after the storm passed."
    response = stack.predict({"model": "minilm_text", "inputs": {"text": [[sentence]]}})
    assert response.status_code == 200, response.text
    embedding = np.asarray(response.json()["outputs"]["embedding"], dtype=np.float32)
    assert embedding.shape == (1, 384)
    assert float(embedding[0] @ _embed(encoder, [sentence])[0]) > 0.99
    assert abs(np.linalg.norm(embedding[0]) - 1) < 1e-3


def test_a_batch_of_sentences_is_sent_as_one_row_per_sentence(stack, encoder):
    sentences = [
        "Short one.",
        "A much longer sentence that needs a larger bucket of tokens to fit in " * 2,
    ]
    response = stack.predict({"model": "minilm_text", "inputs": {"text": [[s] for s in sentences]}})
    assert response.status_code == 200, response.text
    embedding = np.asarray(response.json()["outputs"]["embedding"], dtype=np.float32)
    cosine = np.sum(embedding * _embed(encoder, sentences), axis=1)
    assert embedding.shape == (2, 384) and (cosine > 0.99).all()


def test_a_flat_list_of_sentences_is_refused_with_the_expected_shape(stack):
    response = stack.predict({"model": "minilm_text", "inputs": {"text": ["a sentence"]}})
    assert response.status_code == 400 and "shape" in response.text


def test_sentences_of_different_lengths_in_one_bucket_are_batched(stack):
    words = ["the", "cat", "sat", "on", "a", "big", "red", "mat", "near", "home"]
    sentences = [
        " ".join(words[: 1 + i % 10]) + f" number {i}." for i in range(32)
    ]  # all <= 16 tokens
    assert (
        len({minilm.bucket_for(len(minilm.load_tokenizer().encode(s).ids)) for s in sentences}) == 1
    )
    assert len({len(s.split()) for s in sentences}) == 10
    before = scrape(stack.triton_metrics_url)

    async def send_all():
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/predict", json={"model": "minilm_text", "inputs": {"text": [[s]]}}
                    )
                    for s in sentences
                )
            )

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * 32

    def delta(metric, after):
        return value(after, metric, model="minilm") - value(before, metric, model="minilm")

    after = stack.triton_metrics_once(lambda s: delta("nv_inference_count", s) >= 32)

    assert delta("nv_inference_count", after) == 32
    assert (
        delta("nv_inference_exec_count", after) < 32
    )  # the encoder ran batches of several sentences


@pytest.mark.parametrize(
    "variant", ["minilm_fp16_text", "minilm_ov_int8_text", "minilm_ov_bf16_text"]
)
def test_the_minilm_variants_answer_close_to_fp32(stack, model_repository, encoder, variant):
    if not (model_repository / variant).exists():
        pytest.skip(f"{variant} is not served on this machine (not faster than FP32 here)")
    sentences = ["The central bank raised interest rates.", "My grandmother baked a lemon tart."]
    response = stack.predict({"model": variant, "inputs": {"text": [[s] for s in sentences]}})
    assert response.status_code == 200, response.text
    embedding = np.asarray(response.json()["outputs"]["embedding"], dtype=np.float32)
    assert (np.sum(embedding * _embed(encoder, sentences), axis=1) > 0.98).all()


@pytest.mark.parametrize("variant", ["digits", "digits_fp16", "digits_int8"])
def test_the_digits_variants_classify_held_out_images(stack, model_repository, variant):
    if not (model_repository / variant).exists():
        pytest.skip(f"{variant} is not served on this machine (not faster than FP32 here)")
    data = digits.load_data()
    images, labels = data.test_x[:64], data.test_y[:64]
    response = stack.predict({"model": variant, "inputs": {"image": images.tolist()}})
    assert response.status_code == 200, response.text
    logits = np.asarray(response.json()["outputs"]["logits"])
    assert np.mean(np.argmax(logits, axis=1) == labels) >= 0.95


def test_the_served_repository_has_every_accepted_variant(model_repository):
    import json

    for model in ("digits", "minilm"):
        manifest = json.loads((model_repository / model / "manifest.json").read_text())
        for variant in manifest["variants"].values():
            if variant["served_as"]:
                assert (
                    variant["passed"]
                    and (model_repository / variant["served_as"] / "config.pbtxt").exists()
                )


def test_a_request_whose_own_timeout_expires_in_the_queue_is_refused_by_triton(tmp_path):
    """Triton honours a request's `timeout` parameter only with allow_timeout_override (set by
    triton_config.Batching) and below a non-zero default timeout; a lone request waits
    max_queue_delay in the queue, longer than 1 us."""
    from conversion.external_data import copy_onnx
    from conversion.repository import publish
    from conversion.triton_config import Batching, ModelConfigSpec, Tensor
    from tests.conftest import start_stack
    from tests.conversion.test_external_data import linear_with_external_weights

    model = copy_onnx(linear_with_external_weights(tmp_path / "src"), tmp_path / "linear.onnx")
    tensors = (Tensor("x", "float32", (64,)),), (Tensor("y", "float32", (8,)),)
    spec = ModelConfigSpec("linear", *tensors, batching=Batching(50_000, (), 1_000_000))
    publish(tmp_path / "repo", spec, model)
    running = start_stack(tmp_path / "run", tmp_path / "repo")
    try:
        url = f"{running.triton_http_url}/v2/models/linear/infer"
        body = {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [1.0] * 64}]}
        answered = httpx.post(url, json=body, timeout=30)
        expired = httpx.post(url, json={**body, "parameters": {"timeout": 1}}, timeout=30)
    finally:
        running.local.stop()
    assert answered.status_code == 200, answered.text
    assert expired.status_code != 200 and "timeout expired" in expired.text.lower(), expired.text
