"""KServe v2 inference over HTTP as Triton 2.51 serves it: JSON tensors and the binary tensor data
extension, in requests and in answers.

Sources: the KServe v2 (Open Inference) REST protocol, Triton's
docs/protocol/extension_binary_data.md and src/http_server.cc (2.51). A request's body is its
JSON header, `Inference-Header-Content-Length` bytes long when binary data follows, then each
binary input's `binary_data_size` bytes in input order (BYTES: 4-byte little-endian length before
each element). An answer writes an output as binary when the output asks (`binary_data`) or, for
the outputs that do not say, when the request asks (`binary_data_output`): its JSON then carries
`parameters.binary_data_size` instead of `data`, and the header's length travels in
`Inference-Header-Content-Length`.

A request becomes the same `Tensor` list as gateway-grpc reads from protobuf, so a JSON, a binary
and a gRPC request with the same tensor share one cache entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, Field, StrictInt

from gateway.cache_key import canonical_bytes
from gateway.errors import GatewayError, listed
from gateway.json_values import json_values
from gateway.service import Prediction
from gateway.tensors import (
    BINARY_ONLY,
    Tensor,
    TensorError,
    json_refusal,
    tensor_from_raw,
    tensor_from_values,
)
from gateway.triton_client import ModelInfo

HEADER_LENGTH = "Inference-Header-Content-Length"
# Request parameters Triton honours and the gateway forwards, with the bound of each (Triton's HTTP
# reads priority as a uint64; timeout goes on to Triton's gRPC as an int64), and the gateway's
# own; any other key is a 400 naming it.
FORWARDED_PARAMETERS = {"priority": 2**64, "timeout": 2**63}
REQUEST_PARAMETERS = ("binary_data_output", *FORWARDED_PARAMETERS)


class V2Tensor(BaseModel):
    """One input of a KServe v2 inference request (KServe v2 protocol, required_api.md).

    `shape`: non-negative JSON integers (1.0 and "1" are refused, as by Triton's parser, which
    answers them with a 500 though); `datatype`: a Triton datatype (BOOL, UINT8..UINT64,
    INT8..INT64, FP16, BF16, FP32, FP64, BYTES). Exactly one of `data` and
    `parameters.binary_data_size` (bytes; Triton extension_binary_data.md), else a 400; FP16 and
    BF16 only as binary data (Triton 2.51 src/http_server.cc).
    """

    name: str
    shape: list[StrictInt]
    datatype: str
    data: list[Any] | None = Field(
        None, description="Values, flat in row-major order or nested; absent for binary data."
    )
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size`: the input's bytes follow the JSON header."
    )


class V2RequestedOutput(BaseModel):
    """An output the request asks for (KServe v2 protocol, required_api.md). Its only parameter
    is `binary_data`, a boolean (Triton extension_binary_data.md); any other is a 400."""

    name: str
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data`: true for raw bytes after the JSON header."
    )


class V2InferRequest(BaseModel):
    """A KServe v2 inference request's JSON (KServe v2 protocol, required_api.md).

    `id` is echoed in the answer; `outputs` absent: every output of the model. Parameters:
    `binary_data_output` (boolean; Triton extension_binary_data.md), `priority` (uint64) and
    `timeout` (microseconds, int64), forwarded to Triton; any other key is a 400.
    """

    id: str | None = None
    inputs: list[V2Tensor]
    outputs: list[V2RequestedOutput] | None = None
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_output`, `priority`, `timeout`; other keys are refused."
    )


class V2OutputTensor(BaseModel):
    """One output of an answer (KServe v2 protocol, required_api.md): `data` flat in row-major
    order, or, written as binary data, no `data` and `parameters.binary_data_size` (bytes after
    the JSON header; Triton extension_binary_data.md)."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class V2InferResponse(BaseModel):
    """A KServe v2 inference answer's JSON (KServe v2 protocol, required_api.md), as Triton 2.51
    writes it: `id` only when the request gave one, `model_version` the served version (a string),
    `outputs` in Triton's order."""

    id: str | None = None
    model_name: str
    model_version: str
    outputs: list[V2OutputTensor]


@dataclass(frozen=True)
class InferCall:
    """What one KServe v2 HTTP inference request asks for, read from its JSON and binary data."""

    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None  # None: every output of the model
    binary_default: bool = False  # request parameter binary_data_output
    binary_outputs: dict[str, bool] = field(default_factory=dict)  # output parameter binary_data
    parameters: dict[str, int] = field(default_factory=dict)  # forwarded to Triton

    def binary(self, output: str) -> bool:
        """Whether `output` is answered as binary data: its own `binary_data` parameter, else the
        request's `binary_data_output` (Triton extension_binary_data.md)."""
        return self.binary_outputs.get(output, self.binary_default)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON header, binary data) of a body; all JSON without `Inference-Header-Content-Length`.

    `header_length`: that header's value, the JSON header's length in bytes. GatewayError 400,
    with Triton's messages, when it is no integer or outside 0..len(body) (Triton 2.51
    src/http_server.cc, GetInferenceHeaderLength).
    """
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        raise GatewayError(400, f"Unable to parse {HEADER_LENGTH}, got: {header_length}") from None
    if not 0 <= length <= len(body):
        raise GatewayError(
            400,
            f"inference header size should be in range (0, {len(body)}), got: {header_length}",
        )
    return body[:length], memoryview(body)[length:]


def infer_call(request: V2InferRequest, binary: memoryview, booleans: bool = True) -> InferCall:
    """The tensors and choices of a parsed request, read in Triton's order (request parameters,
    inputs, requested outputs); GatewayError 400 for anything malformed. `binary`: the bytes after
    the JSON header, taken by the binary inputs in input order (bytes missing or left over: 400).
    `booleans`: whether the JSON holds `true` or `false` at all (when not, numbers need not be
    searched for them)."""
    binary_default, forwarded = _request_parameters(request.parameters or {})
    inputs = _input_tensors(request.inputs, binary, booleans)
    outputs, binary_outputs = _requested_outputs(request.outputs)
    return InferCall(
        id=request.id,
        inputs=inputs,
        outputs=outputs,
        binary_default=binary_default,
        binary_outputs=binary_outputs,
        parameters=forwarded,
    )


def _request_parameters(parameters: dict[str, Any]) -> tuple[bool, dict[str, int]]:
    if not parameters:
        return False, {}
    unknown = sorted(set(parameters) - set(REQUEST_PARAMETERS))
    if unknown:
        raise GatewayError(
            400,
            f"request parameters {listed(unknown)} are not supported by the gateway; "
            f"supported: {listed(REQUEST_PARAMETERS)}",
        )
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise GatewayError(400, "Unable to parse 'binary_data_output'")
    forwarded = {}
    for key, limit in FORWARDED_PARAMETERS.items():
        if key in parameters:
            forwarded[key] = _unsigned(parameters[key], f"Unable to parse '{key}'", limit)
    return binary_default, forwarded


def _requested_outputs(
    requested: list[V2RequestedOutput] | None,
) -> tuple[list[str] | None, dict[str, bool]]:
    if requested is None:
        return None, {}
    binary = {}
    for output in requested:
        parameters = dict(output.parameters or {})
        if "binary_data" in parameters:
            binary[output.name] = parameters.pop("binary_data")
            if not isinstance(binary[output.name], bool):
                raise GatewayError(400, f"output '{output.name}': Unable to parse 'binary_data'")
        _no_parameters(parameters, f"output '{output.name}'")
    return [output.name for output in requested], binary


def _input_tensors(inputs: list[V2Tensor], binary: memoryview, booleans: bool) -> list[Tensor]:
    tensors, offset = [], 0
    for item in inputs:
        size = None
        if item.parameters:
            parameters = dict(item.parameters)
            size = parameters.pop("binary_data_size", None)
            _no_parameters(parameters, f"input '{item.name}'")
        if (size is None) == (item.data is None):
            raise GatewayError(
                400,
                f"input '{item.name}': must set exactly one of 'data' and 'binary_data_size' "
                "in 'parameters'",
            )
        try:
            if size is None:
                tensors.append(_json_tensor(item, booleans))
                continue
            size = _unsigned(size, f"input '{item.name}': Unable to parse 'binary_data_size'")
            if offset + size > len(binary):
                raise GatewayError(
                    400,
                    f"input '{item.name}': binary_data_size {size}, but only "
                    f"{len(binary) - offset} bytes of binary data remain",
                )
            raw = bytes(binary[offset : offset + size])
            tensors.append(tensor_from_raw(item.name, item.datatype, item.shape, raw))
            offset += size
        except TensorError as error:
            raise GatewayError(400, str(error)) from None
    if offset != len(binary):
        raise GatewayError(
            400, f"{len(binary) - offset} bytes of binary data follow the last binary input"
        )
    return tensors


def _json_tensor(item: V2Tensor, booleans: bool) -> Tensor:
    if item.datatype in BINARY_ONLY:  # Triton's own message (src/http_server.cc, ReadDataFromJson)
        raise GatewayError(400, json_refusal(item.datatype, item.name))
    return tensor_from_values(item.name, item.datatype, item.data, item.shape, booleans)


def check_json_outputs(info: ModelInfo, call: InferCall) -> None:
    """FP16 and BF16 outputs can only be answered as binary data, as in Triton: refused before
    inferring, with GatewayError 400 (Triton 2.51 src/http_server.cc's message)."""
    for name in call.outputs or info.outputs:
        output = info.outputs.get(name)
        if output is not None and output.datatype in BINARY_ONLY and not call.binary(name):
            raise GatewayError(
                400,
                f"sending {output.datatype} data via JSON is not supported. Please use the binary "
                f"data format for output {name}",
            )


def infer_response(prediction: Prediction, call: InferCall) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary data follows it, else None), in Triton's layout:
    `id` (when given), `model_name`, `model_version`, then `outputs` in Triton's order. Binary
    outputs' bytes follow the header in output order, little-endian (BYTES: a 4-byte length
    before each element; Triton extension_binary_data.md)."""
    outputs, blobs = [], []
    for name, tensor in prediction.outputs.items():
        entry: dict[str, Any] = {"name": name, "datatype": tensor.datatype, "shape": tensor.shape}
        if call.binary(name):
            raw = canonical_bytes(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            if raw:
                blobs.append(raw)
        else:
            entry["data"] = json_values(tensor.array.reshape(-1), tensor.datatype)
        outputs.append(entry)
    header = {"id": call.id} if call.id else {}
    header |= {"model_name": prediction.model, "model_version": prediction.version}
    head = orjson.dumps({**header, "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def json_values_of(document: dict[str, Any], name: str) -> Any:
    """The JSON `data` of input `name` in a parsed request body (for json_values' overflow check)."""
    return next((i.get("data") for i in document.get("inputs", []) if i.get("name") == name), None)


def _unsigned(value: Any, message: str, limit: int = 2**64) -> int:
    """`value` as an integer in [0, limit); GatewayError 400 with `message` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise GatewayError(400, message)
    return value


def _no_parameters(parameters: dict, where: str) -> None:
    if parameters:
        raise GatewayError(
            400,
            f"{where}: parameters {listed(sorted(parameters))} are not supported by the gateway",
        )
