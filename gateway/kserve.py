"""KServe v2 inference protocol: JSON (HTTP) and protobuf (gRPC) to and from gateway tensors.

Both front ends turn a request into the same `Tensor` list, so an HTTP and a gRPC request with
the same tensor share one cache entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from tritonclient.grpc import service_pb2

from gateway.cache_key import canonical_bytes
from gateway.errors import GatewayError
from gateway.service import Prediction
from gateway.tensors import Tensor, TensorError, tensor_from_raw, tensor_from_values

_TYPED_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] = Field(description="Values, flat in row-major order or nested.")
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    id: str | None = None
    inputs: list[V2Tensor]
    outputs: list[V2RequestedOutput] | None = None
    parameters: dict[str, Any] | None = None


class V2OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2OutputTensor]


def _no_parameters(parameters: dict | None, where: str) -> None:
    if parameters:
        raise GatewayError(400, f"{where}: parameters {sorted(parameters)} are not supported by the gateway")


def tensors_from_json(request: V2InferRequest) -> tuple[list[Tensor], list[str] | None]:
    inputs = []
    for item in request.inputs:
        _no_parameters(item.parameters, f"input '{item.name}'")
        try:
            inputs.append(tensor_from_values(item.name, item.datatype, item.data, item.shape))
        except TensorError as error:
            raise GatewayError(400, str(error)) from None
    outputs = None
    if request.outputs is not None:
        for output in request.outputs:
            _no_parameters(output.parameters, f"output '{output.name}'")
        outputs = [output.name for output in request.outputs]
    return inputs, outputs


def json_response(prediction: Prediction, request_id: str | None) -> dict[str, Any]:
    return {
        "model_name": prediction.model,
        "model_version": prediction.version,
        **({"id": request_id} if request_id else {}),
        "outputs": [
            {
                "name": name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "data": json_values(tensor.array.reshape(-1), tensor.datatype),
            }
            for name, tensor in prediction.outputs.items()
        ],
    }


def json_values(array: np.ndarray, datatype: str) -> Any:
    """JSON-ready values; BYTES become strings."""
    if datatype == "BYTES":
        return [item.decode("utf-8", "replace") for item in array.ravel()] if array.ndim == 1 else [
            json_values(row, datatype) for row in array
        ]
    return array


def tensors_from_proto(request: service_pb2.ModelInferRequest) -> tuple[list[Tensor], list[str] | None]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise GatewayError(400, "raw_input_contents must hold one entry per input")
    inputs = []
    for index, item in enumerate(request.inputs):
        _no_parameters(dict(item.parameters), f"input '{item.name}'")
        shape = [int(d) for d in item.shape]
        try:
            if raw:
                inputs.append(tensor_from_raw(item.name, item.datatype, shape, raw[index]))
            else:
                field = _TYPED_CONTENTS.get(item.datatype)
                if field is None:
                    raise TensorError(f"input '{item.name}': datatype '{item.datatype}' needs raw contents")
                values = list(getattr(item.contents, field))
                inputs.append(tensor_from_values(item.name, item.datatype, values, shape))
        except TensorError as error:
            raise GatewayError(400, str(error)) from None
    outputs = None
    if request.outputs:
        for output in request.outputs:
            _no_parameters(dict(output.parameters), f"output '{output.name}'")
        outputs = [output.name for output in request.outputs]
    return inputs, outputs


def proto_response(prediction: Prediction, request_id: str) -> service_pb2.ModelInferResponse:
    response = service_pb2.ModelInferResponse(
        model_name=prediction.model, model_version=prediction.version, id=request_id
    )
    for name, tensor in prediction.outputs.items():
        response.outputs.add(name=name, datatype=tensor.datatype, shape=list(tensor.shape))
        response.raw_output_contents.append(canonical_bytes(tensor))
    return response
