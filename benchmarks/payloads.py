"""Request bodies for /predict: unique ones (every request a cache miss) and Zipf repeats.

Bodies are built lazily from a process-wide counter and a random run nonce, so two runs against
the same Redis never share a key and a loaded cache cannot flatter a "miss" measurement.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import orjson

Body = Callable[[], bytes]

_COUNTER = itertools.count()
_NONCE = int.from_bytes(os.urandom(4), "little")

WORDS = [
    "the",
    "a",
    "one",
    "every",
    "some",
    "quiet",
    "bright",
    "old",
    "new",
    "small",
    "large",
    "red",
    "green",
    "blue",
    "fast",
    "slow",
    "happy",
    "calm",
    "cat",
    "dog",
    "bird",
    "river",
    "mountain",
    "city",
    "train",
    "ship",
    "book",
    "song",
    "garden",
    "market",
    "teacher",
    "doctor",
    "child",
    "runs",
    "jumps",
    "reads",
    "writes",
    "sings",
    "builds",
    "finds",
    "carries",
    "paints",
    "watches",
    "opens",
    "closes",
    "follows",
    "today",
    "yesterday",
    "slowly",
    "quickly",
    "near",
    "under",
    "over",
    "beside",
    "through",
    "after",
    "before",
    "during",
]


def unique_id() -> int:
    return (_NONCE << 32) | next(_COUNTER)


@lru_cache(maxsize=1)
def digit_images() -> np.ndarray:
    """The 1,797 sklearn digits scaled to [0, 1], [N, 1, 8, 8] float32 (no torch needed)."""
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)[:, None, :, :]


def digits_image(n: int) -> np.ndarray:
    """Image n: a real digit with one pixel nudged by a value unique to n (still a valid input)."""
    images = digit_images()
    image = images[n % len(images)].copy()
    image[0, 0, 0] = (n % 999_983) / 1_000_000.0 + 1e-7 * ((n // 999_983) % 7)
    return image


def sentence(n: int) -> str:
    """A short English-like sentence (about 8-12 tokens) unique to n."""
    rng = random.Random(n)
    words = rng.choices(WORDS, k=rng.randint(5, 8))
    return " ".join(words) + f" number {n % 100_000_007}"


def short_sentences(count: int, seed: int = 11) -> list[str]:
    """`count` distinct short sentences of mixed length (MiniLM's generated set: 16 and 32 token
    buckets about evenly), without quotes or backslashes: the text traffic of `make optimize`,
    `optimize-compare` and `benchmarks.text_path`, so they measure one traffic."""
    from conversion import minilm  # the conversion stack only where text traffic is made

    pool = minilm.sentences(count * 3, seed=seed).sentences
    return [s for s in dict.fromkeys(pool) if '"' not in s and "\\" not in s][:count]


def digits_body(n: int, model: str = "digits") -> bytes:
    return orjson.dumps({"model": model, "inputs": {"image": [digits_image(n).tolist()]}})


def text_body(n: int, model: str = "minilm_text") -> bytes:
    return orjson.dumps({"model": model, "inputs": {"text": [[sentence(n)]]}})


def body_for(kind: str, model: str) -> Callable[[int], bytes]:
    if kind == "image":
        return lambda n: digits_body(n, model)
    return lambda n: text_body(n, model)


def unique(kind: str, model: str) -> Body:
    """Every call a body never sent before (all cache misses)."""
    make = body_for(kind, model)
    return lambda: make(unique_id())


class Zipf:
    """Ranks 0..size-1 drawn with P(k) ~ 1/(k+1)^s: a few hot inputs, a long tail."""

    def __init__(self, size: int, s: float = 1.1, seed: int = 0) -> None:
        weights = 1.0 / np.arange(1, size + 1) ** s
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = random.Random(seed)

    def __call__(self) -> int:
        return int(
            np.searchsorted(self.cdf, self.rng.random(), side="right").clip(0, len(self.cdf) - 1)
        )


def repeated(kind: str, model: str, size: int = 64, s: float = 1.1, seed: int = 0) -> Body:
    """Zipf over `size` fixed bodies (stable across runs: the cache's favourite traffic)."""
    make = body_for(kind, model)
    bodies = [make(10_000_000 + i) for i in range(size)]
    pick = Zipf(size, s, seed)
    return lambda: bodies[pick()]


def mixed(kind: str, model: str, repeat_share: float = 0.7, size: int = 64, seed: int = 0) -> Body:
    hot, cold = repeated(kind, model, size, seed=seed), unique(kind, model)
    rng = random.Random(seed + 1)
    return lambda: hot() if rng.random() < repeat_share else cold()
