"""Every option of a conversion, grouped by the step that reads it, with its one default.

The CLI (`python -m conversion convert`) takes its defaults from these classes, so a default is
written once, here. A demo or a test changes a group with `dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VARIANTS = ("fp16", "int8_dynamic", "int8_static", "ov_int8", "ov_bf16")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class ExportSettings:
    """torch.onnx.export and the checks after it (ONNX Runtime against PyTorch)."""

    opset: int = 17
    atol: float = 1e-4  # ORT vs PyTorch on the sample rows, and at a second size of each axis
    rtol: float = 1e-3
    sample_rows: int = 4  # rows of the first validation batch used to trace and check


@dataclass(frozen=True)
class QuantizationSettings:
    """Which variants are built and how INT8 is calibrated."""

    variants: tuple[str, ...] = VARIANTS
    calibration_method: str = "minmax"
    calibration_batch_size: int = 16
    per_channel: bool = True
    op_types: tuple[str, ...] | None = None  # None: every type the quantizer knows
    keep_first_last: bool = False  # static INT8: the first and last compute nodes stay FP32
    keep_fp32: tuple[str, ...] = ()  # INT8: these node names stay FP32
    # Accuracy-aware INT8: seconds to search for the fewest nodes to keep in FP32 when an INT8
    # variant fails the gate (0 = no search).
    search_budget_s: float = 300.0


@dataclass(frozen=True)
class GateSettings:
    """What each output of a variant must achieve against FP32 (and FP32 against PyTorch)."""

    max_accuracy_drop: float = 0.01  # classification: 1 point of accuracy or top-1 agreement
    min_mean_cosine: float = 0.99  # embedding
    min_ranking_agreement: float = 0.90  # embedding: share of rows with the same nearest row
    max_abs_deviation: float | None = None  # any task: optional bound on |variant - reference|
    # any task: worst ||row in a random batch - row alone|| / ||row alone|| (relative L2) beyond
    # FP32's own; 0.01 is a cosine of ~0.99995 between the two answers (conversion.batch_invariance)
    max_batch_dependence: float = 0.01


@dataclass(frozen=True)
class LatencySettings:
    """How variants are timed, and when a variant is too slow to serve."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    budget_s: float = 0.5  # per model and batch size
    # A variant slower than FP32 by more than this share (median over the batch sizes) is built
    # and reported but not served: numbers move 10-20 % between runs on a shared 2-core machine.
    noise_margin: float = 0.25
    serve_slower: bool = False


@dataclass(frozen=True)
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
    intra_op_threads: int = 1  # onnxruntime_backend parameter intra_op_thread_count; 0 = default
    warmup_batch_sizes: tuple[int, ...] = (1, 8)
    dynamic_size: int = 16  # warmup size of non-batch dynamic axes
    graph_level: int = 1  # onnxruntime_backend: 1 = ORT_ENABLE_EXTENDED

    def __post_init__(self) -> None:
        """ValueError for a max_batch_size below 1: the generated configs leave the batch axis
        out of `dims` and use the dynamic batcher, which Triton allows only with max_batch_size
        >= 1 (0 means "does not batch, dims include the batch axis": model_config.proto)."""
        if self.max_batch_size < 1:
            raise ValueError(
                f"max batch size {self.max_batch_size}: must be at least 1 (the served models "
                "batch; Triton's 0 means a model that does not batch, which these are not)"
            )


@dataclass(frozen=True)
class TensorRTShapes:
    """min/opt/max for each dynamic axis name of the TensorRT optimization profile."""

    batch: tuple[int, int, int] = (1, 8, 64)
    other: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {"sequence": (1, 64, 128)}
    )


@dataclass(frozen=True)
class TransformerHint:
    """Run ORT's transformers optimizer (attention fusion) with these model dimensions."""

    model_type: str = "bert"
    num_heads: int = 12
    hidden_size: int = 384

    @classmethod
    def parse(cls, text: str) -> TransformerHint:
        """`model_type,num_heads,hidden_size`, e.g. `bert,12,384`; ValueError otherwise."""
        kind, heads, hidden = text.split(",")
        return cls(kind.strip(), int(heads), int(hidden))


@dataclass(frozen=True)
class Settings:
    """All option groups of one conversion."""

    export: ExportSettings = ExportSettings()
    quantization: QuantizationSettings = QuantizationSettings()
    gate: GateSettings = GateSettings()
    latency: LatencySettings = LatencySettings()
    serving: ServingOptions = ServingOptions()
    tensorrt: TensorRTShapes = field(default_factory=TensorRTShapes)
    transformer: TransformerHint | None = None
