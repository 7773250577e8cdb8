"""PyTorch -> ONNX with dynamic axes, then proven: ONNX Runtime answers like PyTorch by name, at
the traced sizes and at a second size of every dynamic axis.

The TorchScript exporter records a Python number computed from a tensor size (`len(x)`,
`x.shape[1]` in arithmetic) as a constant, so an axis declared dynamic can be frozen in the
graph; it says so only through a `TracerWarning`. Those warnings are returned and shown, and an
axis that does not hold at a second size fails the export naming the axis and the warnings.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from conversion.binding import NamedModel
from conversion.progress import describe
from conversion.spec import InputSpec, SpecError


class ExportError(RuntimeError):
    """A model could not be exported or does not match PyTorch after export."""


FROZEN_CAUSE = (
    "likely cause: forward turns a tensor size into a Python number (len(x), x.shape[i] or "
    "x.size(i) in arithmetic, int(...)), which the tracer records as a constant; keep sizes "
    "as tensor operations (x.flatten(1), x.reshape(x.shape[0], -1) without arithmetic, "
    "x.mean(dim=1)) or declare the axis fixed"
)


def export_onnx(
    model: NamedModel,
    sample: Mapping[str, np.ndarray],
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
    opset: int = 17,
) -> list[str]:
    """Export with the TorchScript exporter, which keeps graphs the ORT optimizers can fuse.

    `sample` maps input names (in `model.input_names` order) to arrays. Returns the tracer's
    warnings as `file:line: message`; raises ExportError when the exporter fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    chatter = io.StringIO()  # the exporter prints its IR graph on failure; keep the message short
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(sample[n])) for n in model.input_names)
    try:
        with (
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", torch.jit.TracerWarning)
            torch.onnx.export(
                model,
                tensors,
                str(path),
                input_names=model.input_names,
                output_names=model.output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as error:  # torch raises many unrelated types here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from error
    onnx.checker.check_model(str(path), full_check=True)
    found = [
        f"{Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]}"
        for w in caught
        if issubclass(w.category, torch.jit.TracerWarning)
    ]
    return list(dict.fromkeys(found))


def require_dynamic_batch(inputs: list[InputSpec], source: Path) -> None:
    """Raise SpecError when an input of the ONNX model at `source` has a fixed first axis: the
    served models batch (Triton's dynamic batcher), so axis 0 must be symbolic in the graph."""
    fixed = {s.name: s.dims[0] for s in inputs if s.dims and not isinstance(s.dims[0], str)}
    if fixed:
        shown = ", ".join(f"'{n}' axis 0 is {d}" for n, d in fixed.items())
        axes = ", ".join(f"'{n}': {{0: 'batch'}}" for n in fixed)
        raise SpecError(
            f"{source} has a fixed batch axis ({shown}): the served model batches, so re-export "
            f"it with a dynamic batch axis: torch.onnx.export(..., dynamic_axes={{{axes}}}), or "
            "with dynamo=True dynamic_shapes naming torch.export.Dim('batch') for axis 0; or "
            "convert the PyTorch model itself (--model package.module:factory)"
        )


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing run is reported by the caller, not logged twice
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def deviation(
    expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray], atol: float, rtol: float
) -> tuple[float, str | None]:
    """(max |actual - expected| over all outputs, why the first output differs or None)."""
    worst = 0.0
    for name, want in expected.items():
        got = actual[name]
        if want.shape != got.shape:
            return float(
                "inf"
            ), f"output '{name}' is {list(got.shape)}, PyTorch's {list(want.shape)}"
        if want.size == 0:
            continue
        gap = float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))
        worst = max(worst, gap)
        if not np.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
            return worst, f"output '{name}' differs from PyTorch by up to {gap:.3g}"
    return worst, None


def check_against_torch(
    model: NamedModel,
    onnx_path: Path,
    feed: Mapping[str, np.ndarray],
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> float:
    """Run both on `feed`, compare output by output; return the max absolute deviation.

    Raises ExportError naming the output and the tolerance when they differ.
    """
    outputs = _session(onnx_path).run(model.output_names, dict(feed))
    worst, why = deviation(
        model.run(feed), dict(zip(model.output_names, outputs, strict=True)), atol, rtol
    )
    if why:
        raise ExportError(f"ONNX Runtime {why} (atol={atol}, rtol={rtol})")
    return worst


def resized(
    feed: Mapping[str, np.ndarray], inputs: list[InputSpec], axis: str
) -> tuple[dict[str, np.ndarray], int]:
    """`feed` with every axis named `axis` one shorter (or, at size 1, two long); (feed, size)."""
    out, size = dict(feed), 0
    for spec in inputs:
        for index, name in spec.dynamic_axes.items():
            if name != axis:
                continue
            array = out[spec.name]
            length = array.shape[index]
            size = length - 1 if length > 1 else 2
            if size < length:
                out[spec.name] = np.take(array, range(size), axis=index)
            else:
                out[spec.name] = np.concatenate([array, array], axis=index)
    return out, size


def ort_failure(error: BaseException) -> str:
    """ONNX Runtime's failure in a few words: the node and the last sentence of its message
    (e.g. `Reshape node '/model/Reshape': Input shape:{3,2,4}, requested shape:{4,8}`)."""
    text = str(error).strip()
    node = re.search(r"running (\S+) node\. Name:'([^']*)'", text)
    if node is None:
        return describe(error)
    return f"{node.group(1)} node '{node.group(2)}': {text.rsplit('. ', 1)[-1]}"


def _frozen(axis: str, size: int, why: str, inputs: list[InputSpec], warned: list[str]) -> str:
    where = [
        f"input '{s.name}' axis {i}" for s in inputs for i, a in s.dynamic_axes.items() if a == axis
    ]
    return (
        f"the exported graph froze axis '{axis}' ({', '.join(where)}): at {axis}={size} {why}; "
        f"{FROZEN_CAUSE}. Tracer warnings: {'; '.join(warned) or 'none'}"
    )


def prove_dynamic_axes(
    model: NamedModel,
    onnx_path: Path,
    inputs: list[InputSpec],
    sample: Mapping[str, np.ndarray],
    tolerance: tuple[float, float],
    tracer_warnings: list[str],
) -> dict[str, int]:
    """Run ONNX Runtime against PyTorch at a second size of every dynamic axis; {axis: size}.

    Raises SpecError when PyTorch itself fails at that size (the axis is not dynamic), and
    ExportError naming the axis, the likely cause and the tracer's warnings when ONNX Runtime
    fails or answers differently (the axis was frozen at export).
    """
    session = _session(onnx_path)
    axes = list(dict.fromkeys(a for spec in inputs for a in spec.dynamic_axes.values()))
    proven = {}
    for axis in axes:
        feed, size = resized(sample, inputs, axis)
        try:
            expected = model.run(feed)
        except Exception as error:
            raise SpecError(
                f"axis '{axis}' is declared dynamic, but PyTorch itself fails at {axis}={size} "
                f"({describe(error)}): declare that axis with a fixed size"
            ) from error
        try:
            actual = dict(
                zip(model.output_names, session.run(model.output_names, feed), strict=True)
            )
            why = deviation(expected, actual, *tolerance)[1]
        except Exception as error:
            why = f"ONNX Runtime fails: {ort_failure(error)}"
        if why:
            raise ExportError(_frozen(axis, size, why, inputs, tracer_warnings))
        proven[axis] = size
    return proven
