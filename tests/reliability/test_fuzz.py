"""Fuzzing: generated HTTP requests from the OpenAPI schema and malformed gRPC never get a 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from tritonclient.grpc import service_pb2

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


# a thousand real requests: minutes on a loaded 2-core machine, beyond the suite's 300 s default
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_error_in_a_thousand_cases(stack, tmp_path):
    result = subprocess.run(
        [
            str(SCHEMATHESIS if SCHEMATHESIS.exists() else shutil.which("schemathesis")),
            "run",
            f"{stack.gateway_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "130",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=tmp_path,
    )
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert summary, result.stdout[-2000:]
    generated, passed = map(int, summary.groups())
    assert generated >= 1000
    assert passed == generated


def raw_infer(stack, data: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(stack.gateway_grpc_url) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as raised:
            call(data, timeout=10)
    return raised.value


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"\xff\xfe not a protobuf at all", grpc.StatusCode.INVALID_ARGUMENT),
        (
            service_pb2.ModelInferRequest(
                model_name="digits",
                inputs=[
                    service_pb2.ModelInferRequest.InferInputTensor(
                        name="image", datatype="FP32", shape=[1, 1, 8, 8]
                    )
                ],
                raw_input_contents=[b"\x00" * 7],
            ).SerializeToString(),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="digits",
                inputs=[
                    service_pb2.ModelInferRequest.InferInputTensor(
                        name="image", datatype="FP32", shape=[1, 1, 8, 8]
                    )
                ],
            ).SerializeToString(),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="digits",
                inputs=[
                    service_pb2.ModelInferRequest.InferInputTensor(
                        name="image", datatype="BF17", shape=[1]
                    )
                ],
                raw_input_contents=[b"\x00" * 4],
            ).SerializeToString(),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            service_pb2.ModelInferRequest(model_name="").SerializeToString(),
            grpc.StatusCode.NOT_FOUND,
        ),
    ],
    ids=["garbage", "short-raw-contents", "no-contents", "unknown-datatype", "no-model"],
)
def test_malformed_grpc_requests_get_a_client_error_code(stack, request_bytes, code):
    assert raw_infer(stack, request_bytes).code() == code
