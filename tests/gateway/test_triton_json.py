"""gRPC answers are rendered as Triton's HTTP API writes them (integers as numbers)."""

from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2

from gateway.triton_json import message_json


def test_metadata_shapes_are_integers_not_strings():
    metadata = service_pb2.ModelMetadataResponse(name="digits", versions=["1"], platform="python")
    metadata.inputs.add(name="image", datatype="FP32", shape=[-1, 1, 8, 8])
    assert message_json(metadata) == {
        "name": "digits",
        "versions": ["1"],
        "platform": "python",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
        "outputs": [],
    }


def test_config_fields_print_defaults_enums_by_name_and_omit_unset_messages():
    config = mc.ModelConfig(name="digits", max_batch_size=64)
    config.input.add(name="image", data_type=mc.TYPE_FP32, dims=[1, 8, 8])
    config.dynamic_batching.max_queue_delay_microseconds = 2000
    config.parameters["fingerprint"].string_value = "abc"
    rendered = message_json(config)
    assert rendered["input"][0]["dims"] == [1, 8, 8]
    assert rendered["input"][0]["data_type"] == "TYPE_FP32"
    assert rendered["input"][0]["optional"] is False  # a default is printed
    assert "reshape" not in rendered["input"][0]  # an unset message is not
    assert rendered["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert rendered["parameters"] == {"fingerprint": {"string_value": "abc"}}
    assert rendered["batch_input"] == [] and rendered["cc_model_filenames"] == {}
    assert "sequence_batching" not in rendered


def test_only_the_set_member_of_a_oneof_is_printed():
    warmup = mc.ModelWarmup(name="zeros", batch_size=1)
    warmup.inputs["image"].zero_data = True
    rendered = message_json(warmup)["inputs"]["image"]
    assert rendered["zero_data"] is True and "random_data" not in rendered
