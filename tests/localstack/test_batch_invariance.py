"""Through the real tritonserver: every served model answers a row the same alone and inside a
batch of other rows (other lengths, the row and its mates padded to the longest), within the
gate's batch-dependence tolerance. The official image runs the same files with the native
ONNX Runtime / OpenVINO backends; here the python-backend twins run them."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as httpclient

from conversion import minilm
from conversion.batch_invariance import deviation, pad_stack
from conversion.settings import GateSettings
from conversion.triton_config import read_config
from tests.conftest import RunningStack, start_stack

pytestmark = pytest.mark.integration

SERVED_BY = {("onnxruntime_onnx", ""), ("", "openvino")}
ROWS = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_repository) -> RunningStack:
    running = start_stack(tmp_path_factory.mktemp("batch-invariance"), model_repository)
    yield running
    running.local.stop()


def served_models(repository) -> list[str]:
    """The repository's models run by a model backend (not ensembles, not the tokenizer)."""
    return [
        path.parent.name
        for path in sorted(repository.glob("*/config.pbtxt"))
        if (read_config(path).platform, read_config(path).backend) in SERVED_BY
    ]


def rows_for(config) -> list[dict[str, np.ndarray]]:
    """ROWS inputs without the batch axis: sentences of different lengths for token models,
    seeded random values for fixed-shape float inputs."""
    names = [i.name for i in config.input]
    if "input_ids" in names:
        sentences = minilm.validation_sentences(ROWS * 8)[::8]
        tokenizer = minilm.load_tokenizer()
        return [
            {n: a[0] for n, a in minilm.tokenize(tokenizer, [s], length=None).items()}
            for s in sentences
        ]
    rng = np.random.default_rng(0)
    return [
        {i.name: rng.normal(size=tuple(i.dims)).astype(np.float32) for i in config.input}
        for _ in range(ROWS)
    ]


def infer(client, model: str, batch: dict[str, np.ndarray], output: str) -> np.ndarray:
    tensors = []
    for name, array in batch.items():
        datatype = "INT64" if array.dtype == np.int64 else "FP32"
        tensor = httpclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return client.infer(model, tensors).as_numpy(output)


def test_a_row_alone_and_inside_a_batch_agree_within_the_tolerance_for_every_served_model(
    served, model_repository
):
    client = httpclient.InferenceServerClient(served.triton_http_url.removeprefix("http://"))
    limit = GateSettings().max_batch_dependence
    worst = {}
    models = served_models(model_repository)
    for model in models:
        config = read_config(model_repository / model / "config.pbtxt")
        rows, output = rows_for(config), config.output[0].name
        together = infer(client, model, pad_stack(rows), output)
        worst[model] = max(
            deviation(infer(client, model, {n: a[None] for n, a in row.items()}, output)[0], got)
            for row, got in zip(rows, together, strict=True)
        )
    assert worst and all(value <= limit for value in worst.values()), worst
