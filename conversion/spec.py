"""What a conversion needs to know about the model's tensors and data: specs and datasets.

An input spec on the command line reads `name:dtype:dims`, where dims are comma-separated and
a name instead of a number marks a dynamic axis: `image:float32:batch,1,8,8` or
`input_ids:int64:batch,sequence`. The first axis must be the (dynamic) batch axis.
An output spec reads `name[:task][:dims]`, e.g. `logits`, `logits:classification:batch,10` or
`score:regression:batch,1`: the task picks the gate's metric, the dims are checked against what
`forward` returns before anything is exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SpecError(ValueError):
    """A malformed input spec, dataset or gate setting (reported without a stack trace)."""


DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")
TASKS = ("classification", "embedding", "regression")
DEFAULT_TASK = TASKS[0]
BATCH_SIZE = 32  # rows per dataset batch
Dims = tuple[int | str, ...]


def parse_dims(text: str, where: str) -> Dims:
    """`batch,1,8,8` -> ("batch", 1, 8, 8); the first axis must be a name (the batch axis)."""
    dims: list[int | str] = []
    for item in text.split(","):
        item = item.strip()
        if item.isdigit() and int(item) > 0:
            dims.append(int(item))
        elif item.isidentifier():
            dims.append(item)
        else:
            raise SpecError(f"{where}: dim '{item}' is neither a positive size nor a name")
    if not isinstance(dims[0], str):
        raise SpecError(f"{where}: the first axis must be the dynamic batch axis, e.g. batch")
    return tuple(dims)


def format_dims(dims: Dims) -> str:
    """("batch", 1, 8, 8) -> "batch,1,8,8", as the command line writes dims."""
    return ",".join(map(str, dims))


def shared_axes(inputs: Sequence[InputSpec]) -> dict[str, tuple[tuple[str, int], ...]]:
    """{axis name: ((input, axis index), ...)} of each dynamic axis name that two or more axes
    share, the batch axis (index 0) aside, in input order.

    One name on several axes says they always have one length (ONNX's `dim_param`, torch's
    `dynamic_axes`): MiniLM's `input_ids` and `attention_mask` share `sequence`. A request whose
    axes disagree runs in ONNX Runtime without an error and answers wrongly, so the converter
    records each group (`shared_axis:<name>`, conversion.triton_config) for the gateways to check.
    """
    found: dict[str, list[tuple[str, int]]] = {}
    for spec in inputs:
        for index, name in spec.dynamic_axes.items():
            if index != 0:
                found.setdefault(name, []).append((spec.name, index))
    return {name: tuple(axes) for name, axes in found.items() if len(axes) > 1}


@dataclass(frozen=True)
class InputSpec:
    """One model input: its dims with named dynamic axes (`"batch"`, `"sequence"`) or sizes."""

    name: str
    dtype: str
    dims: Dims

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """`name:dtype:dims`; SpecError names what is wrong."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise SpecError(
                f"input spec '{text}': expected name:dtype:dims, e.g. image:float32:batch,1,8,8"
            )
        name, dtype, dims_text = parts
        if dtype not in DTYPES:
            raise SpecError(f"input spec '{text}': dtype '{dtype}' is not one of {sorted(DTYPES)}")
        return cls(name, dtype, parse_dims(dims_text, f"input spec '{text}'"))

    @classmethod
    def infer(cls, name: str, sample: np.ndarray) -> InputSpec:
        """A dynamic batch axis, every other axis fixed at the sample's size."""
        if sample.ndim == 0 or str(sample.dtype) not in DTYPES:
            raise SpecError(
                f"input '{name}': cannot infer a spec from a {sample.dtype} array of shape "
                f"{list(sample.shape)}; give --input {name}:dtype:batch,..."
            )
        return cls(name, str(sample.dtype), ("batch", *sample.shape[1:]))

    def __str__(self) -> str:
        return f"{self.name}:{self.dtype}:{format_dims(self.dims)}"

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """{axis index: name} of the dynamic axes, as torch.onnx.export takes them."""
        return {i: d for i, d in enumerate(self.dims) if isinstance(d, str)}

    @property
    def triton_dims(self) -> tuple[int, ...]:
        """Dims without the batch axis, -1 for each dynamic one (Triton's convention)."""
        return tuple(-1 if isinstance(d, str) else d for d in self.dims[1:])

    def check(self, array: np.ndarray, where: str) -> None:
        """Raise SpecError when `array` cannot feed this input: its rank, a fixed axis, its dtype,
        or a NaN or inf in a floating-point array."""
        if array.ndim != len(self.dims):
            raise SpecError(
                f"{where}: input '{self.name}' has shape {list(array.shape)}, the spec says "
                f"{len(self.dims)} dims {list(self.dims)}"
            )
        for axis, (want, got) in enumerate(zip(self.dims, array.shape, strict=True)):
            if isinstance(want, int) and want != got:
                raise SpecError(
                    f"{where}: input '{self.name}' axis {axis} is {got}, the spec says {want}"
                )
        if np.dtype(self.dtype) != array.dtype:
            raise SpecError(
                f"{where}: input '{self.name}' is {array.dtype}, the spec says {self.dtype}"
            )
        finite = np.isfinite(array) if array.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            bad = array.size - int(np.count_nonzero(finite))
            raise SpecError(
                f"{where}: input '{self.name}' has {bad} non-finite values (NaN or inf): "
                "calibration scales and the accuracy gate need finite data"
            )


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its name, the gate's task for it, and optionally its declared dims."""

    name: str
    task: str = DEFAULT_TASK
    dims: Dims | None = None

    @classmethod
    def parse(cls, text: str, default_task: str = DEFAULT_TASK) -> OutputSpec:
        """`name[:task][:dims]`, e.g. `score:regression:batch,1`; SpecError names what is wrong."""
        name, *rest = text.split(":")
        if not name.replace(".", "_").replace("-", "_").isidentifier():
            raise SpecError(f"output spec '{text}': expected name[:task][:dims], e.g. logits")
        task, dims = default_task, None
        for part in rest:
            if part in TASKS:
                task = part
            elif part:
                dims = parse_dims(part, f"output spec '{text}'")
        if task not in TASKS:
            raise SpecError(f"output spec '{text}': task '{task}' is not one of {list(TASKS)}")
        return cls(name, task, dims)

    def __str__(self) -> str:
        dims = f":{format_dims(self.dims)}" if self.dims else ""
        return f"{self.name}:{self.task}{dims}"

    def mismatch(self, shape: tuple[int, ...], batch: int) -> str | None:
        """Why a tensor of `shape` (for `batch` rows) is not this output, or None when it fits."""
        if len(shape) == 0 or shape[0] != batch:
            return f"its first axis is not the batch axis ({batch} rows in, shape {list(shape)})"
        if self.dims is None:
            return None
        fits = len(shape) == len(self.dims) and all(
            isinstance(want, str) or want == got
            for want, got in zip(self.dims, shape, strict=False)
        )
        return None if fits else f"declared [{format_dims(self.dims)}], got {list(shape)}"


@dataclass
class Dataset:
    """Batches of model inputs (each batch equal-shaped) and, for classification, labels.

    `labels` (int, one per row of a classification output) is optional: without it the gate
    uses top-1 agreement with the reference instead of accuracy.
    """

    batches: list[dict[str, np.ndarray]]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)

    @property
    def input_names(self) -> list[str]:
        """The input names of the first batch (every batch has the same)."""
        return list(self.batches[0]) if self.batches else []

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        batch_size: int = BATCH_SIZE,
        labels: np.ndarray | None = None,
    ) -> Dataset:
        """Cut {input name: array with rows first} into batches of `batch_size` rows."""
        count = len(next(iter(arrays.values())))
        batches = [
            {name: a[start : start + batch_size] for name, a in arrays.items()}
            for start in range(0, count, batch_size)
        ]
        return cls(batches, labels)

    @classmethod
    def load_npz(cls, path: Path, batch_size: int = BATCH_SIZE) -> Dataset:
        """An .npz file with one array per input name (rows first), plus optional `labels`."""
        if not path.exists():
            raise SpecError(f"dataset {path} does not exist")
        try:
            data = dict(np.load(path, allow_pickle=False))
        except Exception as error:
            raise SpecError(f"dataset {path}: not a readable .npz file ({error})") from error
        labels = data.pop("labels", None)
        if not data:
            raise SpecError(f"dataset {path}: no input arrays (only {sorted(data) or 'nothing'})")
        rows = {name: len(a) if a.ndim else 0 for name, a in data.items()}
        if len(set(rows.values())) != 1:
            raise SpecError(f"dataset {path}: the arrays differ in rows: {rows}")
        return cls.from_arrays(data, batch_size, labels)

    def head(self, rows: int) -> dict[str, np.ndarray]:
        """The first `rows` rows of the first batch (the sample that traces and checks)."""
        return {name: array[:rows] for name, array in self.batches[0].items()}

    def equal_shaped(self, batch_size: int) -> list[dict[str, np.ndarray]]:
        """Calibration batches of one batch size and one shape (entropy/percentile need that)."""
        out = []
        for batch in self.batches:
            size = len(next(iter(batch.values())))
            for start in range(0, size - batch_size + 1, batch_size):
                out.append({k: v[start : start + batch_size] for k, v in batch.items()})
        shapes = {tuple((k, v.shape) for k, v in b.items()) for b in out}
        if len(shapes) > 1:
            raise SpecError(f"calibration batches differ in shape: {sorted(shapes)[:2]}")
        return out
