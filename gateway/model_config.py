"""What the gateway reads from a model's Triton config (as JSON): its parameters and its steps.

Parameters (string values in `config.pbtxt`'s `parameters`; gateway-grpc reads the same ones):
- `fingerprint`: sha256 of the served file(s), written by the converter. It is part of every
  cache key, so a redeployed file never answers from another file's entries. A model without it
  (a hand-written config) is answered but never cached.
- `valid_range:<input>` = `"<min>,<max>"`: inclusive integer bounds of an index input (token ids:
  `0,<vocabulary size - 1>`, written by the converter from the embedding table). Values outside
  are a 400 before Triton sees them: a native backend fails a whole dynamic batch for one bad id.
- `max_length:<input>` = `"<n>"`: the input's variable (-1) axes, batch aside, may be at most n
  long (MiniLM's `input_ids` and `attention_mask`: 512, its position table; written by the
  converter). Longer is a 400 before Triton sees it: ONNX Runtime would fail it with `Expand node
  ... invalid expand shape`.
- `shared_axis:<axis name>` = `"<input>:<axis>,<input>:<axis>,..."`: the listed axes (indices as
  the request counts them, batch = 0) always have one length (MiniLM's `sequence`:
  `input_ids:1,attention_mask:1`, written by the converter from the export's dynamic-axis names;
  ONNX's `dim_param` rule). A request where they differ is a 400 before Triton sees it: ONNX
  Runtime answers it without an error, wrongly.
- `allow_empty:<input>` = `"true"`: the model accepts a zero-length dynamic axis of that input
  (shape `[1, 0]`); without it such an input is a 400.
- `row_cache` = `"true"` | `"false"`: cache each row of a batched request on its own (docs/cache.md).
  Only for a model with max_batch_size > 0. Default: on where the model batches dynamically (its
  config has `dynamic_batching`; an ensemble: every step does, recursively) and every output has a
  fixed shape after the batch axis, so rows from different batches stack into one answer. Triton's
  contract for dynamic batching is that a model treats the rows of a batch independently
  (Triton docs, "Dynamic Batcher"): that is what makes a row's answer reusable in another batch.

An ensemble's fingerprint combines its own with its steps' (resolved recursively), so a member
converted again changes the ensemble's keys even when the ensemble's config was not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.errors import GatewayError

FINGERPRINT_PARAMETER = "fingerprint"
ROW_CACHE_PARAMETER = "row_cache"
VALID_RANGE_PREFIX = "valid_range:"
ALLOW_EMPTY_PREFIX = "allow_empty:"
MAX_LENGTH_PREFIX = "max_length:"
SHARED_AXIS_PREFIX = "shared_axis:"
_RANGE = re.compile(r"\s*([+-]?[0-9]+)\s*,\s*([+-]?[0-9]+)\s*")
_LENGTH = re.compile(r"\s*(\+?[0-9]+)\s*")
_MEMBER = re.compile(r"(.*):\s*(\+?[0-9]+)\s*", re.DOTALL)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parameter_values(config: dict[str, Any]) -> dict[str, str]:
    """{key: string_value} of a config's parameters (Triton's JSON: `{key: {string_value}}`)."""
    return {
        key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()
    }


def own_fingerprint(config: dict[str, Any]) -> str:
    """The config's `fingerprint` parameter; "" where it has none."""
    return parameter_values(config).get(FINGERPRINT_PARAMETER, "")


def valid_ranges(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """{input: (min, max)} from `valid_range:<input>` parameters, both bounds inclusive.

    Raises GatewayError 500 naming the parameter when a value is not two integers `min,max` with
    min <= max: a safety check that is misconfigured must not be skipped silently.
    """
    ranges = {}
    for key, value in parameter_values(config).items():
        if not key.startswith(VALID_RANGE_PREFIX):
            continue
        bounds = _bounds(value)
        if bounds is None:
            raise GatewayError(
                500,
                f"model '{config.get('name', '')}': config parameter {key} = '{value}' "
                "is not '<min>,<max>' (inclusive integers)",
            )
        ranges[key.removeprefix(VALID_RANGE_PREFIX)] = bounds
    return ranges


def _bounds(value: str) -> tuple[int, int] | None:
    """(min, max) of "<min>,<max>": decimal integers within int64, spaces around each allowed,
    min <= max (gateway-grpc's parseRange accepts exactly the same)."""
    match = _RANGE.fullmatch(value)
    if match is None:
        return None
    lowest, highest = int(match[1]), int(match[2])
    if not INT64_MIN <= lowest <= highest <= INT64_MAX:
        return None
    return lowest, highest


def max_lengths(config: dict[str, Any]) -> dict[str, int]:
    """{input: n} from `max_length:<input>` parameters: the most elements a variable axis of that
    input may have, batch aside.

    Raises GatewayError 500 naming the parameter when a value is not one decimal integer in
    1..int64 max (spaces around allowed; gateway-grpc's parseLength accepts exactly the same).
    """
    lengths = {}
    for key, value in parameter_values(config).items():
        if not key.startswith(MAX_LENGTH_PREFIX):
            continue
        match = _LENGTH.fullmatch(value)
        if match is None or not 1 <= int(match[1]) <= INT64_MAX:
            raise GatewayError(
                500,
                f"model '{config.get('name', '')}': config parameter {key} = '{value}' "
                "is not '<n>' (a positive integer)",
            )
        lengths[key.removeprefix(MAX_LENGTH_PREFIX)] = int(match[1])
    return lengths


def shared_axes(config: dict[str, Any]) -> dict[str, tuple[tuple[str, int], ...]]:
    """{axis name: ((input, axis index), ...)} from `shared_axis:<axis name>` parameters.

    Raises GatewayError 500 naming the parameter when a value is not two or more comma-separated
    `<input>:<axis>` (axis a decimal integer up to int64 max, spaces around it allowed; the input
    name is everything before the last colon, spaces around it kept out; gateway-grpc's
    parseSharedAxis accepts exactly the same).
    """
    groups = {}
    for key, value in parameter_values(config).items():
        if not key.startswith(SHARED_AXIS_PREFIX):
            continue
        members = [_member(item) for item in value.split(",")]
        if len(members) < 2 or None in members:
            raise GatewayError(
                500,
                f"model '{config.get('name', '')}': config parameter {key} = '{value}' "
                "is not '<input>:<axis>,<input>:<axis>[,...]'",
            )
        groups[key.removeprefix(SHARED_AXIS_PREFIX)] = tuple(members)
    return groups


def _member(item: str) -> tuple[str, int] | None:
    """(input, axis) of "<input>:<axis>", or None when malformed (module docstring)."""
    match = _MEMBER.fullmatch(item)
    if match is None or not match[1].strip() or int(match[2]) > INT64_MAX:
        return None
    return match[1].strip(), int(match[2])


def allow_empty(config: dict[str, Any]) -> frozenset[str]:
    """Inputs whose `allow_empty:<input>` parameter is "true" (any case)."""
    return frozenset(
        key.removeprefix(ALLOW_EMPTY_PREFIX)
        for key, value in parameter_values(config).items()
        if key.startswith(ALLOW_EMPTY_PREFIX) and value.strip().lower() == "true"
    )


def batches_dynamically(config: dict[str, Any]) -> bool:
    """Whether the config itself has `dynamic_batching` (an ensemble's steps are checked by the
    caller, which resolves their configs)."""
    return "dynamic_batching" in config


def row_cache(config: dict[str, Any], steps_batch: bool) -> bool:
    """Whether answers are cached per row (see the module docstring).

    `steps_batch`: the model batches dynamically (for an ensemble: all its steps do). Raises
    GatewayError 500 naming the parameter when `row_cache` is neither "true" nor "false".
    """
    if int(config.get("max_batch_size", 0)) <= 0:
        return False
    value = parameter_values(config).get(ROW_CACHE_PARAMETER)
    if value is None:
        fixed = all(
            all(int(d) >= 0 for d in output.get("dims", ())) for output in config.get("output", [])
        )
        return steps_batch and fixed
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise GatewayError(
            500,
            f"model '{config.get('name', '')}': config parameter {ROW_CACHE_PARAMETER} = "
            f"'{value}' is not 'true' or 'false'",
        )
    return flag == "true"


def ensemble_steps(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(model name, version) of each step of an ensemble, in config order; [] for other models.

    The version is "" where the step takes the latest (-1), as Triton's model APIs spell it.
    """
    if config.get("platform") != "ensemble":
        return []
    steps = config.get("ensemble_scheduling", {}).get("step", [])
    return [(s["model_name"], _version(s.get("model_version", -1))) for s in steps]


def combined_fingerprint(own: str, members: Sequence[tuple[str, str]]) -> str:
    """An ensemble's cache fingerprint: its own, then `|<step model>=<its fingerprint>` per step.

    gateway-grpc builds the same string (both gateways' keys must agree).
    """
    return own + "".join(f"|{name}={fingerprint}" for name, fingerprint in members)


def _version(value: Any) -> str:
    number = int(value)
    return str(number) if number > 0 else ""
