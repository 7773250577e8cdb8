"""Every generated config parses as Triton's ModelConfig and says what the design asks for."""

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from conversion.triton_config import Batching, ModelConfigSpec, Tensor, build_config, parse, render


def _configs(repository):
    return sorted([*repository.glob("*/config.pbtxt"), *repository.glob("*/configs/*.pbtxt")])


def _parse(path):
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_every_generated_config_parses_with_model_config_pb2(digits_converted, minilm_converted):
    paths = _configs(digits_converted.repository) + _configs(minilm_converted.repository)
    names = {p.parent.name if p.parent.name != "configs" else p.parent.parent.name for p in paths}
    # Which variants are served depends on their latency on this machine; the report says which.
    served = {*digits_converted.report.served, *minilm_converted.report.served}
    assert {"digits", "minilm", "minilm_tokenizer", "minilm_text"} <= served
    assert served <= names
    for path in paths:
        config = _parse(path)
        assert config.name in names
        assert config.parameters["fingerprint"].string_value, path


def test_an_onnx_variant_config_has_batching_queue_policy_instances_warmup_and_optimization(
    digits_converted,
):
    config = _parse(digits_converted.repository / "digits_int8" / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert not config.dynamic_batching.preferred_batch_size
    policy = config.dynamic_batching.default_queue_policy
    assert policy.default_timeout_microseconds == 1_000_000 and policy.max_queue_size == 1024
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (2, mc.ModelInstanceGroup.KIND_CPU)
    ]
    assert config.parameters["intra_op_thread_count"].string_value == "1"
    assert [w.batch_size for w in config.model_warmup] == [1, 8]
    assert list(config.model_warmup[0].inputs["image"].dims) == [1, 8, 8]
    assert config.optimization.graph.level == 1
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    assert list(config.input[0].dims) == [1, 8, 8] and list(config.output[0].dims) == [10]


def test_the_gpu_config_uses_gpu_instances_and_the_tensorrt_accelerator(
    digits_converted, minilm_converted
):
    for repository, name, precision in [
        (digits_converted.repository, "digits", "FP16"),
        (digits_converted.repository, "digits_int8", "INT8"),  # static Q/DQ: explicit quantization
        (minilm_converted.repository, "minilm", "FP16"),  # fp16 is served only if fast here
    ]:
        gpu = _parse(repository / name / "configs" / "gpu.pbtxt")
        cpu = _parse(repository / name / "config.pbtxt")
        assert gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
        (accelerator,) = gpu.optimization.execution_accelerators.gpu_execution_accelerator
        assert (
            accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == precision
        )
        assert gpu.parameters["fingerprint"] == cpu.parameters["fingerprint"]


def test_minilm_takes_variable_length_token_ids_and_warms_up_on_one_bucket(minilm_converted):
    config = _parse(minilm_converted.repository / "minilm" / "config.pbtxt")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("input_ids", mc.TYPE_INT64, [-1]),
        ("attention_mask", mc.TYPE_INT64, [-1]),
    ]
    assert [(o.name, list(o.dims)) for o in config.output] == [("embedding", [384])]
    assert list(config.model_warmup[0].inputs["input_ids"].dims) == [16]


def test_the_text_ensemble_chains_the_tokenizer_and_the_encoder(minilm_converted):
    ensemble = _parse(minilm_converted.repository / "minilm_text" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and not ensemble.instance_group
    assert [(i.name, i.data_type, list(i.dims)) for i in ensemble.input] == [
        ("text", mc.TYPE_STRING, [1])
    ]
    steps = ensemble.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["minilm_tokenizer", "minilm"]
    internal = {"input_ids": "_input_ids", "attention_mask": "_attention_mask"}
    assert dict(steps[0].output_map) == internal == dict(steps[1].input_map)
    assert dict(steps[1].output_map) == {"embedding": "embedding"}
    tokenizer = _parse(minilm_converted.repository / "minilm_tokenizer" / "config.pbtxt")
    assert tokenizer.backend == "python" and tokenizer.dynamic_batching.max_queue_delay_microseconds
    assert (minilm_converted.repository / "minilm_tokenizer" / "1" / "tokenizer.json").exists()


def test_the_ensemble_fingerprint_changes_with_its_member(minilm_converted):
    text = _parse(minilm_converted.repository / "minilm_text" / "config.pbtxt")
    others = [n for n in minilm_converted.report.served if n.endswith("_text") and n != text.name]
    if not others:
        pytest.skip("only the FP32 variant is served on this machine (latency rule)")
    other_text = _parse(minilm_converted.repository / others[0] / "config.pbtxt")
    member = _parse(minilm_converted.repository / "minilm" / "config.pbtxt")
    prints = {c.parameters["fingerprint"].string_value for c in (text, other_text, member)}
    assert len(prints) == 3


def test_a_typo_in_a_config_is_a_parse_error():
    import pytest

    with pytest.raises(text_format.ParseError, match="max_queue_delay_us"):
        parse('name: "x" dynamic_batching { max_queue_delay_us: 5 }')


def test_a_plan_config_has_platform_tensorrt_plan_and_gpu_instances():
    spec = ModelConfigSpec(
        name="m_trt_fp16",
        platform="tensorrt_plan",
        inputs=(Tensor("x", "float32", (4,)),),
        outputs=(Tensor("y", "float32", (2,)),),
        batching=Batching(100),
        instance_kind="KIND_GPU",
    )
    config = parse(render(build_config(spec)))
    assert config.platform == "tensorrt_plan"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU


def test_valid_ranges_become_valid_range_parameters_of_inclusive_integers():
    spec = ModelConfigSpec(
        name="m",
        inputs=(Tensor("input_ids", "int64", (-1,)),),
        outputs=(Tensor("embedding", "float32", (4,)),),
        valid_ranges={"input_ids": (0, 30521)},
    )
    assert build_config(spec).parameters["valid_range:input_ids"].string_value == "0,30521"


def test_every_minilm_variant_carries_the_vocabulary_range_of_its_token_ids(minilm_converted):
    served = [n for n in minilm_converted.report.served if not n.endswith(("_text", "_tokenizer"))]
    assert "minilm" in served  # the others are served only if they are fast enough here
    for name in served:
        for path in (f"{name}/config.pbtxt", f"{name}/configs/gpu.pbtxt"):
            config = _parse(minilm_converted.repository / path)
            assert config.parameters["valid_range:input_ids"].string_value == "0,30521", path
            assert "valid_range:attention_mask" not in config.parameters


def test_checksums_name_tritons_checksum_agent_in_the_format_of_its_readme():
    spec = ModelConfigSpec(
        name="m",
        inputs=(Tensor("x", "float32", (4,)),),
        outputs=(Tensor("y", "float32", (2,)),),
        checksums={"1/model.onnx": "d726e132f91f16ebee703d96f6f73cb1"},
    )
    # github.com/triton-inference-server/checksum_repository_agent README, path relative to the
    # model directory as in the server's qa/L0_repoagent_checksum
    documented = parse(
        'model_repository_agents { agents [ { name: "checksum", parameters { '
        'key: "MD5:1/model.onnx", value: "d726e132f91f16ebee703d96f6f73cb1" } } ] }'
    )
    config = parse(render(build_config(spec)))
    assert config.model_repository_agents == documented.model_repository_agents


def test_a_batching_config_lets_a_request_shorten_its_queue_timeout():
    batching = Batching(queue_timeout_us=1_000_000)
    tensors = (Tensor("x", "float32", (4,)),), (Tensor("y", "float32", (4,)),)
    spec = ModelConfigSpec("m", *tensors, batching=batching)
    policy = build_config(spec).dynamic_batching.default_queue_policy
    assert policy.allow_timeout_override and policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert policy.default_timeout_microseconds == 1_000_000  # a client may only shorten it
    assert "allow_timeout_override: true" in render(build_config(spec))


def test_every_generated_batching_config_honours_client_timeouts(digits_converted):
    for name in digits_converted.report.served:
        config = _parse(digits_converted.repository / name / "config.pbtxt")
        assert config.dynamic_batching.default_queue_policy.allow_timeout_override


def test_max_lengths_become_max_length_parameters():
    tensors = (Tensor("input_ids", "int64", (-1,)),), (Tensor("y", "float32", (4,)),)
    spec = ModelConfigSpec("m", *tensors, max_lengths={"input_ids": 512})
    assert build_config(spec).parameters["max_length:input_ids"].string_value == "512"


def test_shared_axes_become_shared_axis_parameters_listing_input_and_axis():
    tensors = (Tensor("input_ids", "int64", (-1,)), Tensor("attention_mask", "int64", (-1,)))
    spec = ModelConfigSpec(
        "m",
        tensors,
        (Tensor("y", "float32", (4,)),),
        shared_axes={"sequence": (("input_ids", 1), ("attention_mask", 1))},
    )
    parameter = build_config(spec).parameters["shared_axis:sequence"]
    assert parameter.string_value == "input_ids:1,attention_mask:1"


def test_every_minilm_variant_carries_its_512_token_limit_and_one_sequence_axis(minilm_converted):
    served = [n for n in minilm_converted.report.served if not n.endswith(("_text", "_tokenizer"))]
    assert "minilm" in served
    for name in served:
        parameters = _parse(minilm_converted.repository / name / "config.pbtxt").parameters
        assert parameters["max_length:input_ids"].string_value == "512"
        assert parameters["max_length:attention_mask"].string_value == "512"
        assert parameters["shared_axis:sequence"].string_value == "input_ids:1,attention_mask:1"
