"""Hugging Face models from a local folder (`--model hf:PATH`), offline.

The folder's `config.json` decides the task from its first `architectures` entry:

| architecture | served output | gate task |
|---|---|---|
| `*ForSequenceClassification` | `logits` [batch, num_labels] | classification |
| `*ForTokenClassification` | `logits` [batch, sequence, num_labels] | classification (per token) |
| `*ForImageClassification` | `logits` [batch, num_labels] | classification |
| anything else (`BertModel`, ...) | `embedding` [batch, hidden], pooled | embedding |

Feature extraction pools as the folder's sentence-transformers modules say (`modules.json`,
`1_Pooling/config.json`: cls / mean / max / mean_sqrt_len tokens; a `Normalize` module: L2),
mean pooling when there are none. Text models take `input_ids` and `attention_mask` (INT64
[batch, sequence]) and are served with their `tokenizer.json` in front (`<name>_text`); image
models take `pixel_values` (FP32 [batch, 3, H, W], as the folder's image processor makes them).

Data for calibration and validation: a text file, one sample a line (`label<TAB>text` lines give
labels), tokenized by the folder's tokenizer.json as the served tokenizer does; or a folder of
images (in subfolders named after their label, for labels), through the folder's image processor.
Labels are names from `config.label2id` or integers. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from conversion import tokenizer_model
from conversion.settings import Settings, TransformerHint
from conversion.spec import Dataset, InputSpec, OutputSpec, SpecError
from conversion.text_serving import TextServing

if TYPE_CHECKING:
    from conversion.pipeline import Conversion

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


class SentenceEmbedding(nn.Module):
    """A transformer's last hidden state pooled over the attention mask (and L2-normalized).

    forward(input_ids, attention_mask: INT64 [batch, sequence]) -> FP32 [batch, hidden].
    """

    def __init__(self, encoder: nn.Module, pooling: str = "mean_tokens", normalize: bool = True):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise SpecError(f"pooling '{pooling}' is not one of {list(POOLING_MODES)}")
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """INT64 [batch, sequence] ids and mask -> FP32 [batch, hidden] pooled embeddings."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls_token":
            pooled = hidden[:, 0]
        elif self.pooling == "max_tokens":
            pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
        else:
            pooled = (hidden * mask).sum(dim=1)
            count = mask.sum(dim=1).clamp(min=1e-9)
            pooled = pooled / (count.sqrt() if self.pooling == "mean_sqrt_len_tokens" else count)
        return nn.functional.normalize(pooled, p=2.0, dim=1) if self.normalize else pooled


def pooling_of(folder: Path) -> tuple[str, bool]:
    """(pooling mode, normalize) from sentence-transformers' modules.json; (mean, False) without."""
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return "mean_tokens", False
    modules = json.loads(modules_file.read_text())
    normalize = any(m.get("type", "").endswith(".Normalize") for m in modules)
    pooling = next((m for m in modules if m.get("type", "").endswith(".Pooling")), None)
    if pooling is None:
        return "mean_tokens", normalize
    config = json.loads((folder / pooling["path"] / "config.json").read_text())
    modes = [m for m in POOLING_MODES if config.get(f"pooling_mode_{m}")]
    return (modes[0] if modes else "mean_tokens"), normalize


@dataclass
class HFModel:
    """A folder's model wrapped for conversion, with its tensors and how to read its data."""

    module: nn.Module
    inputs: tuple[InputSpec, ...]  # empty: inferred from the data (image size)
    outputs: tuple[OutputSpec, ...]
    task: str
    transformer: TransformerHint | None
    text: TextServing | None
    # (text file or image folder, batch size, one shape for all batches) -> Dataset; the
    # calibration set needs one shape, validation batches are padded to their bucket as served
    read: Callable[[Path, int, bool], Dataset]


def _auto_class(architecture: str):
    import transformers

    for suffix in ("ForSequenceClassification", "ForTokenClassification", "ForImageClassification"):
        if architecture.endswith(suffix):
            return getattr(transformers, f"AutoModel{suffix}"), suffix
    return transformers.AutoModel, None


def _outputs(kind: str | None, config) -> tuple[OutputSpec, ...]:
    if kind is None:
        return (OutputSpec("embedding", "embedding", ("batch", config.hidden_size)),)
    if kind == "ForTokenClassification":
        return (OutputSpec("logits", "classification", ("batch", "sequence", config.num_labels)),)
    return (OutputSpec("logits", "classification", ("batch", config.num_labels)),)


def load(folder: Path, fuse_attention: bool = False) -> HFModel:
    """Load the folder's model (eager attention when `fuse_attention`, so ORT can fuse it).

    Raises SpecError when the folder lacks config.json, or a text model its tokenizer.json.
    """
    from transformers import AutoConfig

    if not (folder / "config.json").exists():
        raise SpecError(f"hf:{folder}: no config.json (expected a save_pretrained folder)")
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    auto, kind = _auto_class((config.architectures or [""])[0])
    attention = {"attn_implementation": "eager"} if fuse_attention else {}
    model = auto.from_pretrained(folder, local_files_only=True, **attention).eval()
    is_text = model.main_input_name == "input_ids"
    if kind is None:
        pooling, normalize = pooling_of(folder)
        model = SentenceEmbedding(model, pooling, normalize).eval()
    hint = None
    if fuse_attention:
        hint = TransformerHint(config.model_type, config.num_attention_heads, config.hidden_size)
    outputs = _outputs(kind, config)
    task = outputs[0].task
    if is_text:
        return _text_model(folder, config, model, outputs, task, hint)
    return _image_model(folder, config, model, outputs, task, hint)


def _labels(names: list[str | None], config, where: Path) -> np.ndarray | None:
    if all(n is None for n in names):
        return None
    known = {str(k): v for k, v in (config.label2id or {}).items()}
    try:
        return np.array([known[n] if n in known else int(n) for n in names], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise SpecError(
            f"{where}: every sample needs a label when one has one; labels are "
            f"{sorted(known)} or integers"
        ) from None


def _text_model(folder, config, model, outputs, task, hint) -> HFModel:
    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.exists():
        raise SpecError(f"hf:{folder}: a text model needs tokenizer.json in the folder")
    text = TextServing.for_tokenizer(
        tokenizer_file, getattr(config, "max_position_embeddings", None)
    )
    tokenizer = tokenizer_model.load_tokenizer(str(tokenizer_file), text.buckets[-1])

    def read(path: Path, batch_size: int, one_shape: bool = False) -> Dataset:
        if not path.is_file():
            raise SpecError(f"{path}: a text model reads a text file, one sample a line")
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if not lines:
            raise SpecError(f"{path}: no text")
        split = [line.split("\t", 1) if "\t" in line else [None, line] for line in lines]
        texts, labels = [s[1] for s in split], _labels([s[0] for s in split], config, path)
        order = sorted(range(len(texts)), key=lambda i: len(tokenizer.encode(texts[i]).ids))
        longest = len(tokenizer.encode(texts[order[-1]]).ids)
        buckets = (
            (tokenizer_model.bucket_for(longest, text.buckets),) if one_shape else text.buckets
        )
        batches = []
        for start in range(0, len(order), batch_size):  # padded to their bucket, as served
            rows = [texts[i] for i in order[start : start + batch_size]]
            ids, mask = tokenizer_model.encode(tokenizer, rows, buckets, text.pad_id)
            batches.append({"input_ids": ids, "attention_mask": mask})
        return Dataset(batches, None if labels is None else labels[order])

    inputs = tuple(InputSpec(n, "int64", ("batch", "sequence")) for n in TEXT_INPUTS)
    return HFModel(model, inputs, outputs, task, hint, text, read)


def _image_model(folder, config, model, outputs, task, hint) -> HFModel:
    from PIL import Image
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)

    def read(path: Path, batch_size: int, one_shape: bool = False) -> Dataset:
        if not path.is_dir():
            raise SpecError(f"{path}: an image model reads a folder of images")
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SpecError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
        names = [None if f.parent == path else f.parent.name for f in files]
        pixels = np.concatenate(
            [
                processor(
                    images=[Image.open(f).convert("RGB") for f in files[i : i + 32]],
                    return_tensors="np",
                )["pixel_values"].astype(np.float32)
                for i in range(0, len(files), 32)
            ]
        )
        return Dataset.from_arrays(
            {"pixel_values": pixels}, batch_size, _labels(names, config, path)
        )

    return HFModel(model, (), outputs, task, hint, None, read)  # inputs: from the pixels


def conversion(
    name: str,
    folder: Path,
    calibration: Path,
    validation: Path,
    batch_size: int,
    transformer: str | None,
    settings: Settings,
) -> Conversion:
    """The Conversion of `--model hf:FOLDER`: the folder's tensors, task, tokenizer and data.

    `transformer`: None (no fusion), "auto" (hint from config.json, eager attention) or an
    explicit `model_type,num_heads,hidden_size`.
    """
    from conversion.pipeline import Conversion

    loaded = load(folder, fuse_attention=transformer is not None)
    explicit = transformer not in (None, "auto")
    hint = TransformerHint.parse(transformer) if explicit else loaded.transformer
    return Conversion(
        name=name,
        source=loaded.module,
        inputs=loaded.inputs,
        outputs=loaded.outputs,
        task=loaded.task,
        calibration=loaded.read(calibration, batch_size, True),
        validation=loaded.read(validation, batch_size),
        settings=replace(settings, transformer=hint),
        text=loaded.text,
    )
