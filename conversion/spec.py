"""What a conversion needs to know: input specs, datasets, the task and its accuracy gate.

An input spec on the command line reads `name:dtype:dims`, where dims are comma-separated and
a name instead of a number marks a dynamic axis: `image:float32:batch,1,8,8` or
`input_ids:int64:batch,sequence`. The first axis must be the (dynamic) batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class SpecError(ValueError):
    """A malformed input spec, dataset or gate setting (reported without a stack trace)."""


_DTYPES = {"float32", "float16", "int64", "int32", "int8", "uint8", "bool"}


@dataclass(frozen=True)
class InputSpec:
    """One model input: its dims with named dynamic axes (`"batch"`, `"sequence"`) or sizes."""

    name: str
    dtype: str
    dims: tuple[int | str, ...]

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise SpecError(
                f"input spec '{text}': expected name:dtype:dims, e.g. image:float32:batch,1,8,8"
            )
        name, dtype, dims_text = parts
        if dtype not in _DTYPES:
            raise SpecError(f"input spec '{text}': dtype '{dtype}' is not one of {sorted(_DTYPES)}")
        dims: list[int | str] = []
        for item in dims_text.split(","):
            item = item.strip()
            if item.isdigit() and int(item) > 0:
                dims.append(int(item))
            elif item.isidentifier():
                dims.append(item)
            else:
                raise SpecError(
                    f"input spec '{text}': dim '{item}' is neither a positive size nor a name"
                )
        if not isinstance(dims[0], str):
            raise SpecError(
                f"input spec '{text}': the first axis must be the dynamic batch axis, e.g. batch"
            )
        return cls(name, dtype, tuple(dims))

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.dims) if isinstance(d, str)}

    @property
    def triton_dims(self) -> tuple[int, ...]:
        """Dims without the batch axis, -1 for each dynamic one (Triton's convention)."""
        return tuple(-1 if isinstance(d, str) else d for d in self.dims[1:])

    def concrete_shape(self, batch: int, dynamic: int = 16) -> tuple[int, ...]:
        return (batch, *(dynamic if isinstance(d, str) else d for d in self.dims[1:]))

    def check(self, array: np.ndarray, where: str) -> None:
        """Raise SpecError when `array` cannot feed this input."""
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


@dataclass
class Dataset:
    """Batches of model inputs (each batch equal-shaped) and, for classification, labels."""

    batches: list[dict[str, np.ndarray]]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], batch_size: int = 32, labels: np.ndarray | None = None
    ) -> Dataset:
        count = len(next(iter(arrays.values())))
        batches = [
            {name: a[start : start + batch_size] for name, a in arrays.items()}
            for start in range(0, count, batch_size)
        ]
        return cls(batches, labels)

    @classmethod
    def load_npz(cls, path: Path, inputs: list[InputSpec], batch_size: int = 32) -> Dataset:
        """An .npz file with one array per input name, plus `labels` for classification."""
        if not path.exists():
            raise SpecError(f"dataset {path} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as error:
            raise SpecError(f"dataset {path}: not a readable .npz file ({error})") from error
        arrays = {}
        for spec in inputs:
            if spec.name not in data:
                raise SpecError(
                    f"dataset {path}: no array named '{spec.name}' (has {sorted(data)})"
                )
            arrays[spec.name] = data[spec.name]
            spec.check(arrays[spec.name], f"dataset {path.name}")
        labels = data.get("labels", None)
        return cls.from_arrays(arrays, batch_size, labels)

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


TASKS = ("classification", "embedding", "regression")


@dataclass(frozen=True)
class Gate:
    """The accuracy gate each variant must pass against the FP32 reference (validation set)."""

    max_accuracy_drop: float = 0.01  # classification: 1 point
    min_mean_cosine: float = 0.99  # embedding
    min_ranking_agreement: float = 0.90  # embedding: share of same nearest neighbour
    max_abs_deviation: float | None = None  # any task: optional bound on |variant - fp32|


@dataclass(frozen=True)
class TransformerHint:
    """Run ORT's transformers optimizer (attention fusion) with these model dimensions."""

    model_type: str = "bert"
    num_heads: int = 12
    hidden_size: int = 384


@dataclass
class ServingOptions:
    """What goes into the generated config.pbtxt."""

    max_batch_size: int = 64
    max_queue_delay_us: int = 2000
    queue_timeout_us: int = 1_000_000
    max_queue_size: int = 1024
    # Two instances of one ORT thread each: on a 2-core host this beats one instance of two
    # threads, and a single instance behind a queue policy stalls ~500 ms now and then in
    # Triton 2.51's dynamic batcher (measured; see docs/conversion.md).
    instance_count: int = 2
    intra_op_threads: int = (
        1  # onnxruntime_backend parameter intra_op_thread_count; 0 = ORT default
    )
    warmup_batch_sizes: tuple[int, ...] = (1, 8)
    dynamic_size: int = 16  # warmup/profile size of non-batch dynamic axes
    graph_level: int = 1  # onnxruntime_backend: 1 = ORT_ENABLE_EXTENDED


@dataclass
class TensorRTShapes:
    """min/opt/max for each dynamic axis name of the optimization profile."""

    batch: tuple[int, int, int] = (1, 8, 64)
    other: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {"sequence": (1, 64, 128)}
    )
