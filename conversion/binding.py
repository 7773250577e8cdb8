"""Named tensors in and out of a PyTorch model: how `forward` is called, and what it returned.

Inputs bind to `forward`'s parameters by name: positional or keyword-only parameters and
`**kwargs` take the tensors as keyword arguments; a `forward` taking one dict (a parameter
annotated `dict`/`Mapping`, or the only parameter when several inputs are given) gets the
inputs as that dict's keys. Outputs bind by key for a dict or a Hugging Face `ModelOutput`;
by position for a tuple only after each tensor's shape matched its declared dims.
`NamedModel` wraps the model as `forward(*inputs) -> tuple(outputs)` in the spec's order: what
`torch.onnx.export` traces, and what every comparison with PyTorch calls.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from conversion.spec import OutputSpec, SpecError, format_dims

_NAMED_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


@dataclass(frozen=True)
class InputBinding:
    """How a feed {input name: tensor} reaches `forward`.

    `positional`: input names passed by position, in order (positional-only parameters, or the
    lone parameter of a one-input model named otherwise); the rest go by keyword.
    `dict_parameter`: the name of forward's single dict parameter, when the feed goes as one dict.
    """

    positional: tuple[str, ...] = ()
    dict_parameter: str | None = None

    def call(self, model: torch.nn.Module, feed: Mapping[str, torch.Tensor]) -> Any:
        """Call `model` with `feed` ({input name: tensor}) as this binding says; returns what forward returns."""
        if self.dict_parameter is not None:
            return model(dict(feed))
        args = [feed[name] for name in self.positional]
        return model(*args, **{k: v for k, v in feed.items() if k not in self.positional})


def describe_forward(model: torch.nn.Module) -> str:
    """`ClassName.forward(a, b, *, c=None)` (annotations left out), as error messages show it."""
    signature = inspect.signature(model.forward)
    empty = inspect.Parameter.empty
    bare = signature.replace(
        parameters=[p.replace(annotation=empty) for p in signature.parameters.values()],
        return_annotation=empty,
    )
    return f"{type(model).__name__}.forward{bare}"


def _is_mapping(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return bool(re.search(r"\b(dict|Dict|Mapping)\b", text))


def bind_inputs(model: torch.nn.Module, names: list[str]) -> InputBinding:
    """Match input names to `model.forward`'s parameters; SpecError names both sides if none fit."""
    parameters = list(inspect.signature(model.forward).parameters.values())
    named = {p.name: p for p in parameters if p.kind in _NAMED_KINDS}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    unknown = [n for n in names if n not in named]
    required = [p.name for p in named.values() if p.default is inspect.Parameter.empty]
    lone = named[required[0]] if len(required) == 1 else None
    if lone is not None and _is_mapping(lone.annotation):
        return InputBinding(dict_parameter=lone.name)
    if not unknown or takes_kwargs:
        missing = [r for r in required if r not in names]
        if missing:
            raise SpecError(
                f"{describe_forward(model)} needs {missing}, which no input provides "
                f"(inputs: {names})"
            )
        positional_only = inspect.Parameter.POSITIONAL_ONLY
        return InputBinding(
            tuple(n for n, p in named.items() if p.kind is positional_only and n in names)
        )
    if lone is not None and len(names) == 1:
        return InputBinding(positional=(names[0],))  # one input, one parameter
    if lone is not None and len(unknown) == len(names):
        return InputBinding(dict_parameter=lone.name)  # several inputs, one parameter
    raise SpecError(
        f"input {unknown} matches no parameter of {describe_forward(model)}: name the inputs "
        f"after its parameters {list(named)} (or let forward take **kwargs or one dict)"
    )


Selector = str | int | None  # dict key, tuple position, or None for a lone tensor


@dataclass(frozen=True)
class OutputBinding:
    """The served outputs, and where each one is found in what `forward` returns."""

    outputs: tuple[OutputSpec, ...]
    selectors: tuple[Selector, ...]

    def select(self, result: Any) -> tuple[torch.Tensor, ...]:
        """The served outputs, in `outputs` order, out of what forward returned."""
        return tuple(result if key is None else result[key] for key in self.selectors)


def _shapes(tensors: Mapping[Any, torch.Tensor]) -> str:
    return ", ".join(f"{k}: {list(t.shape)}" for k, t in tensors.items())


def _check_shapes(
    outputs: tuple[OutputSpec, ...], tensors: list[torch.Tensor], batch: int, where: list[str]
) -> None:
    problems = [
        f"output '{o.name}' ({where[i]}): {why}"
        for i, o in enumerate(outputs)
        if (why := o.mismatch(tuple(tensors[i].shape), batch))
    ]
    if problems:
        raise SpecError("; ".join(problems))


def _bind_keys(result: Mapping, declared: tuple[OutputSpec, ...], task: str, batch: int):
    tensors = {k: v for k, v in result.items() if isinstance(v, torch.Tensor)}
    outputs = declared or tuple(OutputSpec(str(k), task) for k in tensors)
    missing = [o.name for o in outputs if o.name not in tensors]
    if missing:
        raise SpecError(
            f"output {missing} is not among the tensors forward returns ({_shapes(tensors)})"
        )
    where = [f"key '{o.name}'" for o in outputs]
    _check_shapes(outputs, [tensors[o.name] for o in outputs], batch, where)
    return OutputBinding(outputs, tuple(o.name for o in outputs))


def _bind_positions(result: tuple | list, declared: tuple[OutputSpec, ...], task: str, batch: int):
    if not all(isinstance(t, torch.Tensor) for t in result):
        kinds = [type(t).__name__ for t in result]
        raise SpecError(f"forward returns a tuple of {kinds}: only tensors can be served")
    shapes = _shapes(dict(enumerate(result)))
    outputs = declared or tuple(OutputSpec(f"output_{i}", task) for i in range(len(result)))
    if len(outputs) != len(result):
        raise SpecError(
            f"forward returns {len(result)} tensors (position {shapes}), and "
            f"{len(outputs)} outputs are declared ({[o.name for o in outputs]})"
        )
    if len(result) > 1 and any(o.dims is None for o in declared):
        hint = f"{outputs[0].name}:{format_dims(('batch', *result[0].shape[1:]))}"
        raise SpecError(
            f"forward returns a tuple (position {shapes}): outputs bind by position, so give "
            f"each output its dims (e.g. --output {hint}) to have the order checked, "
            f"or return a dict"
        )
    _check_shapes(outputs, list(result), batch, [f"tuple position {i}" for i in range(len(result))])
    return OutputBinding(outputs, tuple(range(len(result))))


def bind_outputs(
    result: Any, declared: tuple[OutputSpec, ...], task: str, batch: int
) -> OutputBinding:
    """Name what `forward` returned for a `batch`-row sample; infer the outputs if none declared.

    Dicts and ModelOutput bind by key (inferred: every tensor value), tuples by position
    (inferred names `output_0`, ...), a lone tensor as the one output (inferred name `output`).
    Raises SpecError naming the declared output and what forward returned, on any mismatch.
    """
    if isinstance(result, torch.Tensor):
        outputs = declared or (OutputSpec("output", task),)
        if len(outputs) != 1:
            raise SpecError(
                f"forward returns one tensor {list(result.shape)}, and {len(outputs)} outputs "
                f"are declared ({[o.name for o in outputs]})"
            )
        _check_shapes(outputs, [result], batch, ["the returned tensor"])
        return OutputBinding(outputs, (None,))
    if isinstance(result, Mapping):
        return _bind_keys(result, declared, task, batch)
    if isinstance(result, (tuple, list)):
        return _bind_positions(result, declared, task, batch)
    raise SpecError(
        f"forward returns {type(result).__name__}: expected a tensor, a tuple of tensors, "
        "a dict of tensors or a ModelOutput"
    )


class NamedModel(torch.nn.Module):
    """`forward(*inputs)` in `input_names` order -> a tuple in `outputs.outputs` order."""

    def __init__(
        self,
        model: torch.nn.Module,
        input_names: list[str],
        inputs: InputBinding,
        outputs: OutputBinding,
    ) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.inputs = inputs
        self.outputs = outputs
        self.eval()  # torch.onnx.export restores this mode on the whole tree afterwards

    @property
    def output_names(self) -> list[str]:
        """The served output names, in export order."""
        return [o.name for o in self.outputs.outputs]

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Tensors in `input_names` order -> the served outputs in `output_names` order."""
        feed = dict(zip(self.input_names, tensors, strict=True))
        return self.outputs.select(self.inputs.call(self.model, feed))

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """PyTorch's outputs by name for numpy inputs (no grad)."""
        with torch.no_grad():
            result = self(
                *(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self.input_names)
            )
        return {name: t.detach().numpy() for name, t in zip(self.output_names, result, strict=True)}
