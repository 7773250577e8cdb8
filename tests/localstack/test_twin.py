"""The python-backend twin (and the tokenizer) in the real tritonserver: a failing request fails
alone, never its batch-mates or the server, and one that breaks the config's input rules is
refused before any runtime sees it; requests of different lengths share one execution; a file
that is not the one its config describes is refused at load, and Triton keeps answering from the
file it had loaded; OpenVINO instances run unpinned."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
from onnx import numpy_helper
from tritonclient.utils import InferenceServerException

from benchmarks import sweep as bt
from benchmarks.scrape import value
from conversion import minilm
from conversion.fingerprint import version_fingerprint
from conversion.text_serving import TextServing, write_text_models
from conversion.triton_config import read_config, write_config
from localstack.tritonserver import derive_local_repository
from tests.conftest import RunningStack, start_stack

pytestmark = pytest.mark.integration

MODELS = ("digits", "minilm")
ONE_BATCH = "minilm_one_batch"
UNCHECKED = "minilm_unchecked"  # minilm without its input rules: ONNX Runtime sees what is sent
OPENVINO = "minilm_openvino"  # the first OpenVINO variant served on this machine, if any
RULES = ("valid_range:", "max_length:", "shared_axis:")
GOOD_IDS = [101, 2003, 102]  # [CLS] is [SEP]
LONG_IDS = [101, *[2003] * 18, 102]
OUT_OF_VOCABULARY = [101, 40000, 102]  # the vocabulary has 30,522 ids
ROUNDS, EACH = 20, 4


@pytest.fixture(scope="module")
def twin_stack(tmp_path_factory, model_repository) -> RunningStack:
    """A private stack on a copy of digits, minilm and its text models, written by this
    checkout's converter; the gateway re-reads model configs on every request."""
    root = tmp_path_factory.mktemp("twin")
    for name in MODELS:
        shutil.copytree(model_repository / name, root / "repo" / name)
    one_batch(model_repository / "minilm", root / "repo" / ONE_BATCH)
    copy_as(model_repository / "minilm", root / "repo" / UNCHECKED, without=RULES)
    served = [n for n in ("minilm_ov_int8", "minilm_ov_bf16") if (model_repository / n).exists()]
    if served:
        copy_as(model_repository / served[0], root / "repo" / OPENVINO)
    text = TextServing.for_tokenizer(minilm.tokenizer_file())
    write_text_models(root / "repo", "minilm", ["minilm"], text)
    running = start_stack(root / "run", root / "repo", GATEWAY_MODEL_INFO_TTL_S="0")
    yield running
    running.local.stop()


def copy_as(source: Path, target: Path, without: tuple[str, ...] = ()) -> None:
    """`source` as the model `target.name` on one instance, without the parameters whose keys
    start with one of `without`."""
    shutil.copytree(source, target)
    config = read_config(target / "config.pbtxt")
    config.name = target.name
    config.instance_group[0].count = 1
    for key in [k for k in config.parameters if k.startswith(without)]:
        del config.parameters[key]
    write_config(config, target / "config.pbtxt")


def one_batch(source: Path, target: Path) -> None:
    """`source` as a model whose dynamic batcher waits up to 3 s for a batch of 8 requests, on one
    instance: 8 requests sent together make one execution if they can share one."""
    copy_as(source, target)
    config = read_config(target / "config.pbtxt")
    config.max_batch_size = 8
    config.dynamic_batching.max_queue_delay_microseconds = 3_000_000
    config.dynamic_batching.default_queue_policy.default_timeout_microseconds = 0  # none
    config.dynamic_batching.ClearField("preferred_batch_size")
    write_config(config, target / "config.pbtxt")


@pytest.fixture(scope="module")
def other_digits(tmp_path_factory, model_repository) -> Path:
    """Another digits file with the same inputs and outputs and other answers (every logit 1.0
    higher: its output bias shifted), made here rather than taken from a variant the converter
    may not serve on this machine."""
    model = onnx.load(str(model_repository / "digits/1/model.onnx"))
    bias = next(t for t in reversed(model.graph.initializer) if list(t.dims) == [10])
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 1.0, bias.name))
    path = tmp_path_factory.mktemp("other") / "model.onnx"
    onnx.save(model, str(path))
    return path


def token_inputs(module, ids: list[int], mask: list[int] | None = None) -> list:
    tensors = []
    for name, row in (("input_ids", ids), ("attention_mask", mask or [1] * len(ids))):
        array = np.array([row], np.int64)
        tensor = module.InferInput(name, list(array.shape), "INT64")
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def text_inputs(module, text: str) -> list:
    tensor = module.InferInput("text", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
    return [tensor]


async def infer_concurrently(url: str, calls: list[tuple[str, list]]) -> list:
    """Every (model, inputs) call sent at once through Triton's own gRPC client; answers or errors."""
    client = grpcaio.InferenceServerClient(url)
    try:
        return await asyncio.gather(
            *(client.infer(model, inputs) for model, inputs in calls), return_exceptions=True
        )
    finally:
        await client.close()


def requests_of(samples: dict, model: str) -> float:
    return value(samples, "nv_inference_request_success", model=model) + value(
        samples, "nv_inference_request_failure", model=model
    )


def executions(stack: RunningStack, model: str, at_least: float = 0) -> tuple[float, float]:
    """Triton's (requests, executions) of `model` so far, once it counts `at_least` requests:
    fewer executions means batches formed."""
    samples = stack.triton_metrics_once(lambda s: requests_of(s, model) >= at_least)
    return requests_of(samples, model), value(samples, "nv_inference_exec_count", model=model)


def assert_refused_as_client_mistake(answer: object, names: str) -> None:
    assert isinstance(answer, InferenceServerException), answer
    assert answer.status() == "StatusCode.INVALID_ARGUMENT", answer
    assert names in answer.message()


def assert_same_answer(batched: np.ndarray, alone: np.ndarray) -> None:
    """Equal to float rounding: ORT's kernels block a batch of n rows differently than one row."""
    assert np.allclose(batched, alone, rtol=1e-5, atol=1e-6), np.abs(batched - alone).max()


def run_rounds(stack: RunningStack, good: tuple[str, list], bad: tuple[str, list]) -> list:
    """ROUNDS rounds of EACH good and EACH bad calls sent together, interleaved."""
    calls = [good, bad] * EACH
    answers = []
    for _ in range(ROUNDS):
        answers += asyncio.run(infer_concurrently(stack.triton_grpc_url, calls))
    return answers


def test_bad_token_ids_batched_with_good_ones_fail_alone_and_the_server_stays_up(twin_stack):
    # no input rules: the batch's one ONNX Runtime call fails, then each request runs alone
    good = (UNCHECKED, token_inputs(grpcaio, GOOD_IDS))
    alone = asyncio.run(infer_concurrently(twin_stack.triton_grpc_url, [good]))[0]
    expected = alone.as_numpy("embedding")
    requests_before, executions_before = executions(twin_stack, UNCHECKED)

    answers = run_rounds(twin_stack, good, (UNCHECKED, token_inputs(grpcaio, OUT_OF_VOCABULARY)))

    for answer in answers[0::2]:
        assert not isinstance(answer, Exception), answer
        assert_same_answer(answer.as_numpy("embedding"), expected)
    for answer in answers[1::2]:
        assert_refused_as_client_mistake(answer, "input index out of range")
    requests, runs = executions(twin_stack, UNCHECKED, requests_before + len(answers))
    assert requests - requests_before == len(answers)
    assert runs - executions_before < len(answers)  # requests were batched together
    assert twin_stack.local.processes.running("triton")


def test_a_text_request_batched_with_bad_token_ids_gets_the_answer_it_gets_alone(twin_stack):
    text = ("minilm_text", text_inputs(grpcaio, "Triton batches requests of the same shape."))
    expected = asyncio.run(infer_concurrently(twin_stack.triton_grpc_url, [text]))[0]
    # 16 ids: the tokenizer's bucket, so the encoder's batcher may put them in one batch
    bad = ("minilm", token_inputs(grpcaio, [*OUT_OF_VOCABULARY, *[0] * 13]))

    answers = run_rounds(twin_stack, text, bad)

    for answer in answers[0::2]:
        assert not isinstance(answer, Exception), answer
        assert_same_answer(answer.as_numpy("embedding"), expected.as_numpy("embedding"))
    for answer in answers[1::2]:
        assert_refused_as_client_mistake(answer, "value 40000 is outside the valid range")


def test_requests_of_two_lengths_share_one_execution_and_each_gets_its_own_answer(twin_stack):
    short, long = token_inputs(grpcaio, GOOD_IDS), token_inputs(grpcaio, LONG_IDS)
    url = twin_stack.triton_grpc_url
    alone = [
        a.as_numpy("embedding")
        for a in asyncio.run(infer_concurrently(url, [("minilm", short), ("minilm", long)]))
    ]
    requests_before, executions_before = executions(twin_stack, ONE_BATCH)

    answers = asyncio.run(infer_concurrently(url, [(ONE_BATCH, short), (ONE_BATCH, long)] * 4))

    for index, answer in enumerate(answers):
        assert not isinstance(answer, Exception), answer
        assert_same_answer(answer.as_numpy("embedding"), alone[index % 2])
    requests, runs = executions(twin_stack, ONE_BATCH, requests_before + len(answers))
    assert (requests - requests_before, runs - executions_before) == (len(answers), 1)


def test_openvino_refuses_broken_requests_alone_and_their_batch_mates_get_their_own_answers(
    twin_stack,
):
    # OpenVINO answers ids and mask of different lengths with its previous output, without error
    if not (twin_stack.local.model_repository / OPENVINO).exists():
        pytest.skip("no OpenVINO variant is served on this machine")
    url = twin_stack.triton_grpc_url
    rows = [[101, *range(2000 + i, 2007 + i), 102] for i in range(3)]
    goods = [(OPENVINO, token_inputs(grpcaio, row)) for row in rows]
    alone = [a.as_numpy("embedding") for a in asyncio.run(infer_concurrently(url, goods))]
    bads = [
        (OPENVINO, token_inputs(grpcaio, rows[0], [1] * 4)),
        (OPENVINO, token_inputs(grpcaio, [*OUT_OF_VOCABULARY, *[0] * 6])),
    ]

    for _ in range(10):
        answers = asyncio.run(infer_concurrently(url, goods + bads))

        for answer, expected in zip(answers[:3], alone, strict=True):
            assert not isinstance(answer, Exception), answer
            assert_same_answer(answer.as_numpy("embedding"), expected)
        assert_refused_as_client_mistake(answers[3], "disagree on the length of axis 'sequence'")
        assert_refused_as_client_mistake(answers[4], "value 40000 is outside the valid range")


@pytest.mark.parametrize(
    ("model", "ids", "mask", "names"),
    [
        (UNCHECKED, OUT_OF_VOCABULARY, None, "input index out of range"),
        (UNCHECKED, GOOD_IDS, [1, 1, 1, 1], "shall have same shape"),
        ("minilm", OUT_OF_VOCABULARY, None, "valid range [0, 30521] (config parameter"),
        ("minilm", GOOD_IDS, [1, 1, 1, 1], "disagree on the length of axis 'sequence': 3 vs 4"),
        ("minilm", [101] * 513, None, "length 513 exceeds the model's maximum 512"),
        ("minilm", [], None, "has an empty axis"),
    ],
)
def test_an_input_the_twin_or_onnx_runtime_refuses_is_a_400_over_http(
    twin_stack, model, ids, mask, names
):
    client = httpclient.InferenceServerClient(twin_stack.triton_http_url.removeprefix("http://"))
    with pytest.raises(InferenceServerException) as refused:
        client.infer(model, token_inputs(httpclient, ids, mask))
    assert refused.value.status() == "400"
    assert names in refused.value.message()


def load(stack: RunningStack, model: str) -> str:
    """Ask Triton to load `model` again; '' if it loaded, else Triton's error message."""
    client = httpclient.InferenceServerClient(stack.triton_http_url.removeprefix("http://"))
    try:
        client.load_model(model)
    except InferenceServerException as error:
        return error.message()
    return ""


def digits_body(seed: int) -> dict:
    image = np.random.default_rng(seed).random((1, 1, 8, 8), dtype=np.float32)
    return {"model": "digits", "inputs": {"image": image.tolist()}}


def logits_of(model_file: Path, body: dict) -> np.ndarray:
    image = np.array(body["inputs"]["image"], np.float32)
    return ort.InferenceSession(str(model_file)).run(None, {"image": image})[0]


def answer(stack: RunningStack, body: dict) -> tuple[str, np.ndarray]:
    response = stack.predict(body)
    assert response.status_code == 200, response.text
    return response.headers["X-Cache"], np.array(response.json()["outputs"]["logits"])


def test_a_file_swapped_by_hand_is_refused_and_the_loaded_file_keeps_answering(
    twin_stack, other_digits, tmp_path
):
    repository = twin_stack.local.model_repository
    model_file = repository / "digits/1/model.onnx"
    shutil.copyfile(model_file, tmp_path / "original.onnx")
    cached = digits_body(1)
    assert answer(twin_stack, cached)[0] == "MISS"
    try:
        shutil.copyfile(other_digits, model_file)
        refused = load(twin_stack, "digits")
        assert "fingerprint" in refused and "re-run the converter" in refused, refused

        hit, fresh = answer(twin_stack, cached), answer(twin_stack, digits_body(2))
        assert hit[0] == "HIT" and fresh[0] == "MISS"
        assert np.allclose(hit[1], logits_of(tmp_path / "original.onnx", cached), atol=1e-5)
        assert np.allclose(
            fresh[1], logits_of(tmp_path / "original.onnx", digits_body(2)), atol=1e-5
        )
    finally:
        shutil.copyfile(tmp_path / "original.onnx", model_file)
    assert load(twin_stack, "digits") == ""
    assert answer(twin_stack, cached)[0] == "HIT"
    assert np.allclose(
        answer(twin_stack, digits_body(3))[1], logits_of(model_file, digits_body(3)), atol=1e-5
    )


def redeploy(stack: RunningStack, model: str, model_file: Path) -> None:
    """What the converter does: the new file and its fingerprint in config.pbtxt, together."""
    target = stack.local.model_repository / model
    shutil.copyfile(model_file, target / "1/model.onnx")
    config = read_config(target / "config.pbtxt")
    config.parameters["fingerprint"].string_value = version_fingerprint(
        target / "1", ["model.onnx"]
    )
    write_config(config, target / "config.pbtxt")
    stack.local.reload_model(model)


def test_a_file_changed_with_its_config_gets_new_keys_and_the_old_keys_stay_the_old_files(
    twin_stack, other_digits, tmp_path
):
    repository = twin_stack.local.model_repository
    shutil.copyfile(repository / "digits/1/model.onnx", tmp_path / "original.onnx")
    shutil.copyfile(repository / "digits/config.pbtxt", tmp_path / "config.pbtxt")
    before, during = digits_body(11), digits_body(12)
    old = answer(twin_stack, before)[1]
    try:
        redeploy(twin_stack, "digits", other_digits)
        swapped = answer(twin_stack, before)
        assert swapped[0] == "MISS"
        assert np.allclose(swapped[1], logits_of(other_digits, before))
        assert not np.allclose(swapped[1], old)
        assert answer(twin_stack, during)[0] == "MISS"
    finally:
        shutil.copyfile(tmp_path / "config.pbtxt", repository / "digits/config.pbtxt")
        redeploy(twin_stack, "digits", tmp_path / "original.onnx")
    restored = answer(twin_stack, before)
    assert restored[0] == "HIT" and np.array_equal(restored[1], old)
    again = answer(twin_stack, during)  # computed by the other file: not under these keys
    assert again[0] == "MISS"
    assert np.allclose(again[1], logits_of(tmp_path / "original.onnx", during), atol=1e-5)


def test_the_tokenizer_refuses_a_changed_tokenizer_file_and_keeps_answering(twin_stack):
    served = twin_stack.local.run_dir / "triton-repository/minilm_tokenizer/1/tokenizer.json"
    original = served.read_bytes()
    text = ("minilm_text", text_inputs(grpcaio, "a sentence"))
    expected = asyncio.run(infer_concurrently(twin_stack.triton_grpc_url, [text]))[0]
    try:
        served.write_bytes(original + b"\n")
        refused = load(twin_stack, "minilm_tokenizer")
        assert "model minilm_tokenizer" in refused and "fingerprint" in refused, refused
        still = asyncio.run(infer_concurrently(twin_stack.triton_grpc_url, [text]))[0]
        assert np.array_equal(still.as_numpy("embedding"), expected.as_numpy("embedding"))
    finally:
        served.write_bytes(original)
    assert load(twin_stack, "minilm_tokenizer") == ""


def test_openvino_instances_run_unpinned(tmp_path, model_repository):
    # each instance is a stub process; pinned, two 1-thread instances ran at the speed of one
    served = [n for n in ("minilm_ov_int8", "minilm_ov_bf16") if (model_repository / n).exists()]
    if not served:
        pytest.skip("no OpenVINO variant is served on this machine")
    canonical = bt.write_canonical_variant(
        model_repository, tmp_path / "canonical",
        {served[0]: {"instances": 2, "threads": 1}}, keep=[served[0]],
    )  # fmt: skip
    derive_local_repository(canonical, tmp_path / "repository")
    with bt.TritonServer(tmp_path / "run", tmp_path / "repository") as server:
        pass  # stopped: every stub's log line has reached Triton's log
    log = server.processes.log_path("triton").read_text(errors="replace")
    effective = [line for line in log.splitlines() if "OpenVINO" in line and "runs with" in line]
    assert len(effective) == 2, log[-3000:]
    assert all("ENABLE_CPU_PINNING=False" in line for line in effective), effective
    assert all("INFERENCE_NUM_THREADS=1," in line for line in effective), effective
