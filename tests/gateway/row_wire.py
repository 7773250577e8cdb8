"""Batched requests over both gateways and Triton direct, binary both ways, for the per-row cache
tests: each answer as numpy arrays with the cache state the gateway reported."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

DATATYPES = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64", np.dtype("O"): "BYTES"}
NUMPY = {"FP32": "<f4", "INT64": "<i8", "FP16": "<f2"}


@dataclass(frozen=True)
class Answered:
    outputs: dict[str, np.ndarray]
    cache: str  # X-Cache / x-cache: HIT, PARTIAL, MISS ("" from Triton direct)
    hit_rows: int | None  # X-Cache-Hit-Rows / x-cache-hit-rows


def raw(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return b"".join(struct.pack("<I", len(item)) + item for item in array.ravel())
    return np.ascontiguousarray(array).tobytes()


def from_raw(datatype: str, shape: list[int], data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=NUMPY[datatype]).reshape(shape)


def via_http(url: str, model: str, inputs: dict[str, np.ndarray]) -> Answered:
    """A binary KServe v2 request to the HTTP gateway, binary outputs asked for."""
    blobs = [raw(a) for a in inputs.values()]
    head = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": DATATYPES[array.dtype],
                "parameters": {"binary_data_size": len(blob)},
            }
            for (name, array), blob in zip(inputs.items(), blobs, strict=True)
        ],
        "parameters": {"binary_data_output": True},
    }
    header = json.dumps(head).encode()
    response = httpx.post(
        f"{url}/v2/models/{model}/infer",
        content=header + b"".join(blobs),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    answer, offset, outputs = json.loads(response.content[:length]), length, {}
    for output in answer["outputs"]:
        size = output["parameters"]["binary_data_size"]
        data = response.content[offset : offset + size]
        outputs[output["name"]] = from_raw(output["datatype"], output["shape"], data)
        offset += size
    rows = response.headers.get("X-Cache-Hit-Rows")
    return Answered(outputs, response.headers["X-Cache"], None if rows is None else int(rows))


def via_grpc(target: str, model: str, inputs: dict[str, np.ndarray]) -> Answered:
    """A raw ModelInfer to gateway-grpc (or to Triton direct: then cache is "")."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array in inputs.items():
        request.inputs.add(name=name, datatype=DATATYPES[array.dtype], shape=list(array.shape))
        request.raw_input_contents.append(raw(array))
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response, call = stub.ModelInfer.with_call(request, timeout=60)
    outputs = {
        out.name: from_raw(out.datatype, list(out.shape), data)
        for out, data in zip(response.outputs, response.raw_output_contents, strict=True)
    }
    trailers = dict(call.trailing_metadata() or ())
    rows = trailers.get("x-cache-hit-rows")
    return Answered(outputs, trailers.get("x-cache", ""), None if rows is None else int(rows))
