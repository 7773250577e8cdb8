"""How the conformance cases (tests/conformance/cases.py) become corpus.json, the data file both
front ends are tested against: the Python gateway by tests/conformance/test_gateway.py, gateway-grpc
by gateway-grpc/corpus_test.go.

    python -m tests.conformance.corpus     # rewrite corpus.json after changing cases.py

`test_corpus.py` fails while the committed file differs from what this writes.

The file (JSON, keys sorted):
- `models`: name -> `metadata` (a ModelMetadataResponse) and `config` (a ModelConfig), both in
  protobuf's JSON form with the proto field names, as a Triton stand-in serves them; `fingerprint`:
  the cache fingerprint a gateway must resolve (an ensemble's combines its steps'), "" where the
  model is not cached.
- `requests`: each case with `name`, `rule` (where the rule comes from), `model`, `triton` (what
  Triton's ModelInfer answers: `answer`, a ModelInferResponse in JSON form, or `error` with a gRPC
  `code` and `message`; null when Triton must not be reached), and `requests`: every wire form of
  the same request, each with its own `expect`:
  - HTTP: `form`, `path`, `headers`, the body as `body` (text) or `body_base64`; `expect`: `status`,
    `message` (the `error` of the JSON answer; "" on success), `headers` that must be present.
  - gRPC: `form`, `request` (a ModelInferRequest in JSON form) or `message_base64` (raw bytes);
    `expect`: `code` (a grpc status name) and `message`.
  After each request: `key` (the Redis key stored, null when nothing may be stored), `value` (the
  stored bytes, base64), `forwarded_parameters` (the request parameters Triton receives, JSON form),
  `queue_rejection` and `cache_bypassed` (the metric reason counted, "" for none).
  A model cached per row (gateway.model_config.row_cache) has `key` null and instead: `seeded`
  ({row key: value} in Redis before the request), `rows` ({row key: value} in Redis after it,
  seeded ones included) and `triton_inputs` ({input: base64 of the raw bytes Triton receives}:
  only the rows Redis lacked, each once, in request order); the HTTP `expect` `headers` then hold
  X-Cache (HIT, PARTIAL or MISS) and X-Cache-Hit-Rows, the gRPC `expect` `trailers` x-cache and
  x-cache-hit-rows (every success has x-cache).
- `settings`: `env` -> the parsed `settings` (every Python setting; gateway-grpc's, which it prints
  with `-print-config`, are a subset with the same names) or `error`: the variable named.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2

from gateway import model_config
from gateway.cache_key import cache_key, canonical_bytes, row_keys
from gateway.codec import encode_outputs
from gateway.rows import all_finite, pick_rows, split_rows
from gateway.tensors import Tensor

CORPUS = Path(__file__).with_name("corpus.json")
NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BF16": "<u2",  # bit patterns: numpy has no bfloat16
}
TYPED_CONTENTS = {
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
HTTP_FORMS = ("v2 JSON", "v2 JSON nested", "v2 binary", "/predict")
GRPC_FORMS = ("raw", "typed", "raw+typed", "raw, one missing")


@dataclass(frozen=True)
class Model:
    """A model as Triton describes it: tensors are (name, datatype, shape with -1 for the batch
    and any variable axis). `fingerprint` is the config parameter; `resolves_to` the cache
    fingerprint a gateway must compute (an ensemble's; default: the parameter itself)."""

    name: str
    inputs: tuple[tuple[str, str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, str, tuple[int, ...]], ...]
    max_batch_size: int = 64
    parameters: tuple[tuple[str, str], ...] = ()
    fingerprint: str | None = None  # None: fingerprint-<name>
    steps: tuple[str, ...] = ()  # an ensemble's step models
    resolves_to: str | None = None
    dynamic_batching: bool = False

    @property
    def own_fingerprint(self) -> str:
        return f"fingerprint-{self.name}" if self.fingerprint is None else self.fingerprint

    def metadata(self) -> dict:
        message = service_pb2.ModelMetadataResponse(
            name=self.name, versions=["1"], platform="ensemble" if self.steps else "python"
        )
        for tensors, target in ((self.inputs, message.inputs), (self.outputs, message.outputs)):
            for name, datatype, shape in tensors:
                target.add(name=name, datatype=datatype, shape=shape)
        return _json(message)

    def config(self) -> dict:
        config = model_config_pb2.ModelConfig(name=self.name, max_batch_size=self.max_batch_size)
        batched = 1 if self.max_batch_size else 0
        for tensors, target in ((self.inputs, config.input), (self.outputs, config.output)):
            for name, datatype, shape in tensors:
                data_type = "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
                target.add(
                    name=name,
                    data_type=model_config_pb2.DataType.Value(data_type),
                    dims=shape[batched:],
                )
        parameters = dict(self.parameters)
        if self.own_fingerprint:
            parameters["fingerprint"] = self.own_fingerprint
        for key, value in parameters.items():
            config.parameters[key].string_value = value
        if self.steps:
            config.platform = "ensemble"
            for step in self.steps:
                config.ensemble_scheduling.step.add(model_name=step, model_version=-1)
        else:
            config.backend = "python"
        if self.dynamic_batching:
            config.dynamic_batching.SetInParent()
        return _json(config)

    def datatype(self, tensor: str) -> str | None:
        return next((d for n, d, _ in (*self.inputs, *self.outputs) if n == tensor), None)


@dataclass(frozen=True)
class Input:
    """One input as the client sends it: flat `values` in row-major order, or, to send what no
    values describe, the `raw` bytes of binary forms and the `json` text of a JSON `data` field."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: tuple = ()
    raw: bytes | None = None
    json: str | None = None
    parameters: tuple[tuple[str, Any], ...] = ()

    def array(self) -> np.ndarray:
        if self.datatype == "BYTES":
            items = [v.encode() if isinstance(v, str) else v for v in self.values]
            return np.array(items, dtype=object).reshape(self.shape)
        if self.datatype == "BF16":
            bits = np.array(self.values, np.float32).view(np.uint32) >> 16
            return bits.astype("<u2").reshape(self.shape)
        return np.array(self.values, dtype=NUMPY[self.datatype]).reshape(self.shape)

    def raw_bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.datatype == "BYTES":
            items = [v.encode() if isinstance(v, str) else v for v in self.values]
            return b"".join(struct.pack("<I", len(item)) + item for item in items)
        if self.datatype == "BF16":
            return (np.array(self.values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        return np.array(self.values, dtype=NUMPY.get(self.datatype, "<f4")).tobytes()

    def json_text(self, nested: bool) -> str:
        if self.json is not None:
            return self.json
        values = list(self.values)
        if self.datatype == "BYTES":
            values = [v.decode() if isinstance(v, bytes) else v for v in values]
        if nested and self.shape:
            values = np.array(values, dtype=object).reshape(self.shape).tolist()
        return json.dumps(values)

    def tensor(self) -> Tensor:
        return Tensor(self.name, self.datatype, self.array())


@dataclass(frozen=True)
class Answer:
    """What Triton answers: outputs (name, datatype, shape, flat values), or a gRPC error."""

    outputs: tuple[Input, ...] = ()
    error_code: str = ""
    error_message: str = ""

    def json(self, model: str) -> dict:
        if self.error_code:
            return {"error": {"code": self.error_code, "message": self.error_message}}
        response = service_pb2.ModelInferResponse(model_name=model, model_version="1")
        for output in self.outputs:
            response.outputs.add(name=output.name, datatype=output.datatype, shape=output.shape)
            response.raw_output_contents.append(output.raw_bytes())
        return {"answer": _json(response)}


@dataclass(frozen=True)
class Expect:
    """The answer both front ends give: an HTTP status, a gRPC code, one message (or one per
    front end where the protocols differ), and what is stored or counted."""

    status: int = 200
    code: str = "OK"
    message: str = ""
    http_message: str | None = None
    grpc_message: str | None = None
    retry_after: bool = False
    cached: bool = True  # a success is stored under its key
    reaches_triton: bool = True
    forwarded: dict = field(default_factory=dict)
    queue_rejection: str = ""
    cache_bypassed: str = ""


OK = Expect()


@dataclass(frozen=True)
class Case:
    """A request in every wire form that can carry it (or the `forms` named)."""

    name: str
    rule: str
    model: str
    inputs: tuple[Input, ...]
    expect: Expect = OK
    outputs: tuple[str, ...] | None = None
    output_parameters: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    parameters: tuple[tuple[str, Any], ...] = ()  # HTTP request parameters
    grpc_parameters: tuple[tuple[str, dict], ...] | None = None  # None: derived from parameters
    version: str = ""
    forms: tuple[str, ...] | None = None
    answer: Answer | None = None  # None: the model's outputs, from a fixed pattern
    same_key_as: str = ""
    seeded: tuple[int, ...] = ()  # request rows in the per-row cache before the request


def _json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def http_request(case: Case, form: str) -> dict:
    """The HTTP request of `form`: its path, headers and body."""
    if form == "/predict":
        inputs = ", ".join(f"{json.dumps(i.name)}: {i.json_text(nested=True)}" for i in case.inputs)
        body = f'{{"model": {json.dumps(case.model)}, '
        body += f'"version": {json.dumps(case.version)}, ' if case.version else ""
        body += f'"inputs": {{{inputs}}}'
        body += f', "outputs": {json.dumps(list(case.outputs))}}}' if case.outputs else "}"
        return {"form": form, "path": "/predict", "headers": {}, "body": body}
    version = f"/versions/{case.version}" if case.version else ""
    path = f"/v2/models/{quote(case.model)}{version}/infer"
    binary = form == "v2 binary"
    entries = [_v2_input(item, form) for item in case.inputs]
    head = f'{{"inputs": [{", ".join(entries)}]'
    if case.outputs is not None:
        requested = dict(case.output_parameters)
        outputs = [
            {"name": n, **({"parameters": dict(requested[n])} if n in requested else {})}
            for n in case.outputs
        ]
        head += f', "outputs": {json.dumps(outputs)}'
    if case.parameters:
        head += f', "parameters": {json.dumps(dict(case.parameters))}'
    head += "}"
    if not binary:
        return {"form": form, "path": path, "headers": {}, "body": head}
    data = b"".join(item.raw_bytes() for item in case.inputs)
    headers = {"Inference-Header-Content-Length": str(len(head.encode()))}
    body = base64.b64encode(head.encode() + data).decode()
    return {"form": form, "path": path, "headers": headers, "body_base64": body}


def _v2_input(item: Input, form: str) -> str:
    parameters = dict(item.parameters)
    entry = f'{{"name": {json.dumps(item.name)}, "shape": {json.dumps(list(item.shape))}, '
    entry += f'"datatype": {json.dumps(item.datatype)}'
    if form == "v2 binary":
        parameters.setdefault("binary_data_size", len(item.raw_bytes()))
    else:
        entry += f', "data": {item.json_text(nested=form == "v2 JSON nested")}'
    if parameters:
        entry += f', "parameters": {json.dumps(parameters)}'
    return entry + "}"


def grpc_request(case: Case, form: str) -> dict:
    """The ModelInferRequest of `form` (raw_input_contents or typed contents), as JSON."""
    request = service_pb2.ModelInferRequest(model_name=case.model, model_version=case.version)
    for item in case.inputs:
        tensor = request.inputs.add(name=item.name, datatype=item.datatype, shape=item.shape)
        for key, value in item.parameters:
            json_format.ParseDict(value, tensor.parameters[key])
        if form.startswith("raw"):
            request.raw_input_contents.append(item.raw_bytes())
        if form in ("typed", "raw+typed"):
            contents = getattr(tensor.contents, TYPED_CONTENTS.get(item.datatype, "fp32_contents"))
            values = item.values
            if item.datatype == "BYTES":
                values = [v.encode() if isinstance(v, str) else v for v in values]
            contents.extend(values)
    if form == "raw, one missing":
        del request.raw_input_contents[-1]
    for name in case.outputs or ():
        output = request.outputs.add(name=name)
        for key, value in dict(case.output_parameters).get(name, ()):
            json_format.ParseDict(value, output.parameters[key])
    for key, value in grpc_parameters(case).items():
        json_format.ParseDict(value, request.parameters[key])
    return {"form": form, "request": _json(request)}


def grpc_parameters(case: Case) -> dict[str, dict]:
    """The gRPC request parameters of a case: as given, or HTTP's priority (uint64) and timeout
    (int64) as the HTTP gateway forwards them, and any other key as an int64; binary_data_output
    is HTTP's alone (gRPC answers raw bytes)."""
    if case.grpc_parameters is not None:
        return dict(case.grpc_parameters)
    kinds = {"priority": "uint64_param"}
    return {
        k: {kinds.get(k, "int64_param"): str(v)}
        for k, v in case.parameters
        if k != "binary_data_output"
    }


def default_forms(case: Case, models: dict[str, Model]) -> tuple[str, ...]:
    """Every form that can carry the case: no JSON for FP16/BF16, no typed contents for them
    either, /predict only without parameters and with the model's own datatypes."""
    datatypes = {item.datatype for item in case.inputs}
    raw_only = bool(datatypes & {"FP16", "BF16"}) or any(i.raw is not None for i in case.inputs)
    json_only = any(i.json is not None for i in case.inputs)
    forms = [] if raw_only else ["v2 JSON", "v2 JSON nested"]
    forms += [] if json_only else ["v2 binary"]
    model = models.get(case.model)
    plain = not (case.parameters or case.output_parameters or case.grpc_parameters)
    plain = plain and not any(i.parameters for i in case.inputs)
    if (
        plain
        and not raw_only
        and model
        and all(model.datatype(i.name) == i.datatype for i in case.inputs)
    ):
        forms.append("/predict")
    forms += [] if json_only else ["raw"]
    forms += [] if raw_only or json_only else ["typed"]
    return tuple(forms)


def http_expect(expect: Expect, cache: dict[str, str]) -> dict:
    message = expect.http_message if expect.http_message is not None else expect.message
    headers = {"Retry-After": "1"} if expect.retry_after else {}
    if expect.status == 200:
        headers.update({name.title(): value for name, value in cache.items()})
    return {"status": expect.status, "message": message, "headers": headers}


def grpc_expect(expect: Expect, cache: dict[str, str]) -> dict:
    message = expect.grpc_message if expect.grpc_message is not None else expect.message
    trailers = cache if expect.code == "OK" else {}
    return {"code": expect.code, "message": message, "trailers": trailers}


def default_answer(case: Case, models: dict[str, Model], batch: int | None = None) -> Answer:
    """The model's requested outputs (all, when none are named), `batch` rows (default: the batch
    of the first input), filled with 0.5, 1.5, 2.5, ... (BYTES: 'y0', 'y1', ...) from `start`."""
    model = models[case.model]
    first = case.inputs[0].shape if case.inputs else ()
    if batch is None:
        batch = first[0] if model.max_batch_size and first else 1
    return Answer(tuple(_pattern(model, case.outputs, batch, 0.5)))


def _pattern(model: Model, requested: tuple[str, ...] | None, batch: int, start: float) -> list:
    names = dict.fromkeys(requested) if requested else [n for n, _, _ in model.outputs]
    outputs = []
    for name in names:
        datatype, declared = next((d, s) for n, d, s in model.outputs if n == name)
        shape = tuple(batch if d == -1 and i == 0 else max(d, 1) for i, d in enumerate(declared))
        count = int(np.prod(shape))
        if datatype == "BYTES":
            values = tuple(f"y{i}" for i in range(count))
        elif datatype == "BOOL":
            values = tuple(i % 2 == 0 for i in range(count))
        else:
            floating = datatype in ("FP16", "BF16", "FP32", "FP64")
            values = tuple(i + start if floating else i for i in range(count))
        outputs.append(Input(name, datatype, shape, values))
    return outputs


def row_cached(model: Model, models: dict[str, Model]) -> bool:
    """Whether a gateway caches the model's answers per row (gateway.model_config.row_cache)."""

    def batches(m: Model) -> bool:
        return all(batches(models[s]) for s in m.steps) if m.steps else m.dynamic_batching

    return bool(resolved_fingerprint(model, models)) and model_config.row_cache(
        model.config(), batches(model)
    )


@dataclass(frozen=True)
class RowPlan:
    """What the per-row cache does with a case: the rows seeded, those Triton computes, the rest."""

    keys: list[str]
    seeded: dict[str, bytes]
    missing: dict[str, int]  # key -> its first row, for rows Redis lacks, in request order

    @property
    def hits(self) -> int:
        return sum(key in self.seeded for key in self.keys)

    @property
    def cache(self) -> dict[str, str]:
        state = "HIT" if self.hits == len(self.keys) else "PARTIAL" if self.hits else "MISS"
        return {"x-cache": state, "x-cache-hit-rows": str(self.hits)}


def row_plan(case: Case, models: dict[str, Model]) -> RowPlan:
    model = models[case.model]
    inputs = [item.tensor() for item in case.inputs]
    keys = row_keys(model.name, resolved_fingerprint(model, models), inputs, case.outputs or ())
    seeded = {}
    for row in case.seeded:  # a stored row: the pattern from 100.5 + 10 * its row
        stored = Answer(tuple(_pattern(model, case.outputs, 1, 100.5 + 10 * row)))
        outputs = {o.name: o.tensor() for o in stored.outputs}
        seeded[keys[row]] = encode_outputs(split_rows(outputs, 1)[0])
    missing: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key not in seeded:
            missing.setdefault(key, row)
    return RowPlan(keys, seeded, missing)


def request_entry(case: Case, models: dict[str, Model]) -> dict:
    """A case as the corpus stores it (see the module docstring)."""
    forms = case.forms or default_forms(case, models)
    expect = case.expect
    plan = (
        row_plan(case, models)
        if expect.status == 200 and row_cached(models[case.model], models)
        else None
    )
    if plan is not None and not plan.missing:
        answer = None
    elif plan is not None:
        answer = case.answer or default_answer(case, models, len(plan.missing))
    else:
        answer = case.answer or (default_answer(case, models) if expect.status == 200 else None)
    cache = plan.cache if plan else {"x-cache": "MISS"}
    requests = []
    for form in forms:
        if form in HTTP_FORMS:
            requests.append({**http_request(case, form), "expect": http_expect(expect, cache)})
        else:
            requests.append({**grpc_request(case, form), "expect": grpc_expect(expect, cache)})
    key = value = None
    if plan is None and expect.status == 200 and expect.cached:
        model = models[case.model]
        inputs = [item.tensor() for item in case.inputs]
        key = cache_key(model.name, resolved_fingerprint(model, models), inputs, case.outputs or ())
        outputs = {o.name: o.tensor() for o in answer.outputs}
        value = base64.b64encode(encode_outputs(outputs)).decode()
    entry = {
        "name": case.name,
        "rule": case.rule,
        "model": case.model,
        "triton": answer.json(case.model) if expect.reaches_triton and answer else None,
        "requests": requests,
        "key": key,
        "value": value,
        "forwarded_parameters": expect.forwarded,
        "queue_rejection": expect.queue_rejection,
        "cache_bypassed": expect.cache_bypassed,
    }
    return {**entry, **(_row_entry(case, plan, answer) if plan else {})}


def _row_entry(case: Case, plan: RowPlan, answer: Answer | None) -> dict:
    """The per-row fields of a case's entry (see the module docstring)."""
    encoded = lambda values: {k: base64.b64encode(v).decode() for k, v in values.items()}  # noqa: E731
    stored = dict(plan.seeded)
    triton_inputs = {}
    if plan.missing:
        outputs = {o.name: o.tensor() for o in answer.outputs}
        for key, row in zip(plan.missing, split_rows(outputs, len(plan.missing)), strict=True):
            if all_finite(row.values()):
                stored[key] = encode_outputs(row)
        picked = pick_rows([item.tensor() for item in case.inputs], list(plan.missing.values()))
        triton_inputs = {t.name: canonical_bytes(t) for t in picked}
    return {
        "seeded": encoded(plan.seeded),
        "rows": encoded(stored),
        "triton_inputs": encoded(triton_inputs),
    }


def resolved_fingerprint(model: Model, models: dict[str, Model]) -> str:
    """The fingerprint of a cached model's keys: `resolves_to` where the case file states it (an
    ensemble), else its own parameter."""
    return model.resolves_to if model.resolves_to is not None else model.own_fingerprint


def corpus(
    models: Iterable[Model], cases: Iterable[Case], settings: Iterable[dict]
) -> dict[str, Any]:
    """The whole corpus, ready for json.dumps."""
    by_name = {model.name: model for model in models}
    cases = list(cases)
    entries = [request_entry(case, by_name) for case in cases]
    keys = {entry["name"]: entry["key"] for entry in entries}
    for case, entry in zip(cases, entries, strict=True):
        if case.same_key_as and keys[case.same_key_as] != entry["key"]:
            raise ValueError(f"{case.name}: its key is not {case.same_key_as}'s")
    return {
        "models": {
            name: {
                "metadata": model.metadata(),
                "config": model.config(),
                "fingerprint": resolved_fingerprint(model, by_name),
            }
            for name, model in by_name.items()
        },
        "requests": entries,
        "settings": list(settings),
    }


def render(document: dict) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    from tests.conformance import cases

    CORPUS.write_text(render(corpus(cases.MODELS, cases.CASES, cases.settings_cases())))
    print(f"wrote {CORPUS}")


if __name__ == "__main__":
    main()
