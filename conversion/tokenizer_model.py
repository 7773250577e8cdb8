"""Triton python-backend model: BYTES `text` [1] -> INT64 `input_ids`, `attention_mask` [-1].

Copied by `write_version` as `<repo>/<model>_tokenizer/1/model.py` next to any Hugging Face
`tokenizer.json` and `fingerprint.py` (config parameters: `buckets`, e.g. "16,32,64,128", `pad_id`, and `max_chars`:
each text is cut to that many characters before it is tokenized, CHARS_PER_TOKEN per token of the
largest bucket, so one huge text costs no more CPU than a long sentence). Each request is padded to the smallest length bucket that holds its longest sentence, so
requests of one bucket have equal shapes and Triton's dynamic batcher can batch them for the
encoder. Each request is answered on its own: one that fails gets its own error and leaves its
batch-mates' answers alone. `initialize` refuses to load files that do not match the config's
`fingerprint` (`conversion.fingerprint`).
Needs `tokenizers` in the stub's Python (the local stack's venv; pip-installed in the image).
"""

import json
import os
import shutil

import numpy as np

# Triton imports this file as `<version>.model`: `fingerprint.py` beside it is `<version>.fingerprint`
from .fingerprint import verify_fingerprint, version_fingerprint

BUCKETS = (16, 32, 64, 128)
# Characters of each text read per token the model takes: a tokenizer reads the whole text before
# truncating (1 MB of text cost ~2 s of CPU here), so each text is cut to this many characters
# per token first. English averages ~4-5 characters per WordPiece token, so 32 leaves a text's
# first max-length tokens unchanged unless they average more than 32 characters each (runs of
# whitespace, words over 100 characters that become one [UNK]).
CHARS_PER_TOKEN = 32


def bucket_for(length, buckets=BUCKETS):
    """The smallest bucket that holds `length` tokens (the largest one when none does)."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return buckets[-1]


def max_chars(buckets=BUCKETS):
    """Characters of each text that are tokenized: CHARS_PER_TOKEN per token of the largest bucket."""
    return CHARS_PER_TOKEN * buckets[-1]


def decode_text(raw, limit):
    """The first `limit` characters of one BYTES element (UTF-8, bad bytes replaced), decoding at
    most 4 bytes per character, so a huge element costs no more than a `limit`-character one."""
    if isinstance(raw, bytes):
        return raw[: 4 * limit].decode("utf-8", "replace")[:limit]
    return str(raw)[:limit]


def encode(tokenizer, texts, buckets=BUCKETS, pad_id=0, limit=None):
    """Token ids (`pad_id` after the text) and attention mask of `texts`, INT64 [len(texts),
    bucket], padded to the bucket of the longest one (truncated at the largest bucket). Each text
    is cut to `limit` characters (default `max_chars(buckets)`) before it is tokenized."""
    limit = max_chars(buckets) if limit is None else limit
    encodings = tokenizer.encode_batch([text[:limit] for text in texts])
    length = bucket_for(max((len(e.ids) for e in encodings), default=1), buckets)
    ids = np.full((len(texts), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(texts), length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        n = min(len(encoding.ids), length)
        ids[row, :n] = encoding.ids[:n]
        mask[row, :n] = 1
    return ids, mask


def load_tokenizer(path, max_length=BUCKETS[-1]):
    """A `tokenizers.Tokenizer` from a tokenizer.json at `path`, unpadded, truncating at `max_length`."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def write_version(version_dir, tokenizer_file):
    """Write this model, `fingerprint.py` and `tokenizer_file` into `version_dir` (a Path).

    Returns the version's fingerprint: every file of the directory (`conversion.fingerprint`).
    """
    version_dir.mkdir(parents=True, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copyfile(os.path.abspath(__file__), version_dir / "model.py")
    shutil.copyfile(os.path.join(here, "fingerprint.py"), version_dir / "fingerprint.py")
    shutil.copyfile(tokenizer_file, version_dir / "tokenizer.json")
    return version_fingerprint(version_dir)


class TritonPythonModel:
    """The python-backend model (Triton python_backend's TritonPythonModel interface)."""

    def initialize(self, args):
        """Read the buckets and padding id from the config, load <version>/tokenizer.json."""
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        verify_fingerprint(args["model_name"], version_dir, parameters.get("fingerprint", ""))
        self.buckets = tuple(int(b) for b in parameters.get("buckets", "16,32,64,128").split(","))
        self.pad_id = int(parameters.get("pad_id", "0"))
        self.max_chars = int(parameters.get("max_chars", max_chars(self.buckets)))
        self.tokenizer = load_tokenizer(
            os.path.join(version_dir, "tokenizer.json"), self.buckets[-1]
        )

    def execute(self, requests):
        """One response per request: its texts tokenized to its own bucket; an error answers that
        request only (its own error object)."""
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        import triton_python_backend_utils as pb_utils

        try:
            raw = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
            texts = [decode_text(t, self.max_chars) for t in raw]
            ids, mask = encode(self.tokenizer, texts, self.buckets, self.pad_id, self.max_chars)
        except Exception as error:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tokenizer: {error}"))
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("input_ids", ids),
                pb_utils.Tensor("attention_mask", mask),
            ]
        )
