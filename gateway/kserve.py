"""KServe v2 inference protocol over HTTP: JSON to and from gateway tensors.

A request becomes the same `Tensor` list as gateway-grpc reads from protobuf, so an HTTP and a
gRPC request with the same tensor share one cache entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from gateway.errors import GatewayError
from gateway.service import Prediction
from gateway.tensors import Tensor, TensorError, tensor_from_values


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
        raise GatewayError(
            400, f"{where}: parameters {sorted(parameters)} are not supported by the gateway"
        )


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
        return (
            [item.decode("utf-8", "replace") for item in array.ravel()]
            if array.ndim == 1
            else [json_values(row, datatype) for row in array]
        )
    return array
