"""Derived repositories: one real ModelConfig per sweep point, written through the protobuf."""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2 as mc

from benchmarks import sweep as bt
from benchmarks.suite import Family, sweep_points, technique_points
from conversion.triton_config import read_config


def test_each_sweep_point_becomes_a_python_backend_model_with_its_batching_and_instances(
    model_repository, tmp_path
):
    points = [bt.ConfigPoint("digits", 16, 500, 2, threads=1), bt.ConfigPoint("digits", 64, None)]

    names = bt.write_repository(model_repository, tmp_path, points)

    batched, plain = (read_config(tmp_path / n / "config.pbtxt") for n in names)
    assert batched.backend == "python" and not batched.platform
    assert batched.max_batch_size == 16
    assert batched.dynamic_batching.max_queue_delay_microseconds == 500
    assert batched.instance_group[0].count == 2
    assert batched.parameters["intra_op_thread_count"].string_value == "1"
    assert not plain.HasField("dynamic_batching")
    assert (tmp_path / names[0] / "1" / "model.onnx").resolve() == (
        model_repository / "digits" / "1" / "model.onnx"
    ).resolve()


def test_every_technique_row_differs_from_its_reference_in_exactly_one_setting():
    family = Family(
        "digits",
        "image",
        {"fp32": "digits", "int8": "digits_int8"},
        "digits",
        "digits",
        "digits",
        has_portable=True,
    )
    rows = technique_points(family)
    for technique, (ref, on) in rows.items():
        changed = {k for k in vars(ref) if getattr(ref, k) != getattr(on, k)}
        if technique == "dynamic batching":
            assert changed <= {"queue_delay_us", "max_batch_size"} and "queue_delay_us" in changed
        elif technique == "graph optimization":  # offline (the export) and run-time passes
            assert changed == {"graph_level", "portable"}
        else:
            assert len(changed) == 1, (technique, changed)
    assert set(rows) == {"graph optimization", "INT8", "dynamic batching"}


def test_the_full_sweep_covers_batch_size_queue_delay_and_instances():
    family = Family("digits", "image", {"fp32": "digits"}, "digits", "digits")
    points = sweep_points(family, tiny=False)
    assert {p.max_batch_size for p in points if p.queue_delay_us} >= {8, 64}
    assert {p.queue_delay_us for p in points} >= {None, 500, 2000}
    assert {p.instances for p in points} == {1, 2}


def test_threads_per_instance_go_to_the_knob_of_the_models_backend():
    onnx, openvino = mc.ModelConfig(platform="onnxruntime_onnx"), mc.ModelConfig(backend="openvino")

    for config in (onnx, openvino):
        bt.apply_point(config, bt.ConfigPoint("m", 64, 500, 1, threads=2))

    assert dict(onnx.parameters.items()).keys() == {"intra_op_thread_count"}
    assert dict(openvino.parameters.items()).keys() == {"INFERENCE_NUM_THREADS"}
    assert openvino.parameters["INFERENCE_NUM_THREADS"].string_value == "2"


def test_a_tuning_trial_keeps_the_served_queue_timeout_and_a_sweep_point_gets_a_deep_queue():
    served = mc.ModelConfig(platform="onnxruntime_onnx")
    served.dynamic_batching.default_queue_policy.default_timeout_microseconds = 1_000_000
    served.dynamic_batching.default_queue_policy.max_queue_size = 1024
    point = bt.ConfigPoint("m", 64, 500, 1)

    trial = bt.derived_config(served, point, served_queue=True).dynamic_batching
    sweep = bt.derived_config(served, point).dynamic_batching

    assert trial.default_queue_policy.default_timeout_microseconds == 1_000_000
    assert trial.default_queue_policy.max_queue_size == 1024
    assert sweep.default_queue_policy.default_timeout_microseconds == 30_000_000
    assert sweep.default_queue_policy.max_queue_size == 4096
