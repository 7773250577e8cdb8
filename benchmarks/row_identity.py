"""Is a row computed inside a batch bit-identical to the same row computed alone? (issue 17.3)

The per-row cache stores each row as Triton computed it inside whatever batch it came in, and
serves it later to a request that may hold it in another batch. That is exact only where the
model's answer for a row does not depend on its batch-mates. This asks Triton direct (no gateway,
no cache) for `batch` random rows at once and for each row alone, per model, and reports how many
rows differ in any bit and the largest absolute deviation.

    python -m benchmarks.row_identity --triton 127.0.0.1:8001 [--batch 16] [--models digits,...]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import grpc
import numpy as np
import typer
from tritonclient.grpc import service_pb2, service_pb2_grpc

NUMPY = {"FP32": "<f4", "FP16": "<f2", "INT64": "<i8"}
MODELS = ("digits", "digits_fp16", "digits_int8", "minilm", "minilm_ov_int8")
VOCABULARY = 30522  # MiniLM's (bert-base-uncased) token ids: [0, 30522)


@dataclass(frozen=True)
class Identity:
    model: str
    rows: int
    rows_differing: int  # rows whose bytes in the batch differ from the row alone
    max_abs_deviation: float
    min_cosine: float  # of a row in the batch with the row alone (1.0: same direction)


def random_rows(model: str, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of `batch` rows: digit images in [0, 1) (FP32: the FP16 variants keep FP32 inputs), or 16-token sentences (CLS, random ids,
    SEP, then padding masked out), each row with its own length."""
    if model.startswith("digits"):
        return {"image": rng.random((batch, 1, 8, 8), dtype=np.float32)}
    ids = rng.integers(1000, VOCABULARY, (batch, 16), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(rng.integers(4, 17, batch)):
        ids[row, 0], ids[row, length - 1], ids[row, length:] = 101, 102, 0
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask}


def infer(stub, model: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The model's first output for `inputs`, from Triton's gRPC API (raw bytes both ways)."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array in inputs.items():
        datatype = {"float32": "FP32", "float16": "FP16", "int64": "INT64"}[array.dtype.name]
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    response = stub.ModelInfer(request, timeout=120)
    output = response.outputs[0]
    data = response.raw_output_contents[0]
    return np.frombuffer(data, NUMPY[output.datatype]).reshape(list(output.shape))


def measure(triton: str, model: str, batch: int, seed: int = 17) -> Identity:
    """Compare each row of one batch of `batch` rows with the same row sent alone."""
    inputs = random_rows(model, batch, np.random.default_rng(seed))
    with grpc.insecure_channel(triton) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        together = infer(stub, model, inputs)
        alone = np.concatenate(
            [
                infer(stub, model, {n: a[row : row + 1] for n, a in inputs.items()})
                for row in range(batch)
            ]
        )
    differing = sum(together[r].tobytes() != alone[r].tobytes() for r in range(batch))
    a, b = together.astype(np.float64), alone.astype(np.float64)
    deviation = float(np.max(np.abs(a - b)))
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return Identity(model, batch, int(differing), deviation, float(np.min(cosine)))


def main(
    triton: str = typer.Option("127.0.0.1:8001", help="Triton's gRPC address (host:port)."),
    batch: int = typer.Option(16, help="Rows per batch."),
    models: str = typer.Option(",".join(MODELS), help="Comma-separated models."),
) -> None:
    """Print one JSON line per model: rows, rows_differing, max_abs_deviation, min_cosine."""
    for model in models.split(","):
        print(json.dumps(asdict(measure(triton, model, batch))))


if __name__ == "__main__":
    typer.run(main)
