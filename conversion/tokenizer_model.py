"""Triton python-backend model: BYTES `text` [1] -> INT64 `input_ids`, `attention_mask` [-1].

`write_version` copies it as `<repo>/<model>_tokenizer/1/model.py` next to `tokenizer.json` and
`fingerprint.py`. Each request is padded to the smallest length bucket (16/32/64/128) that holds
its longest sentence, so requests of one bucket have equal shapes and Triton's dynamic batcher can
batch them for the encoder. Each request is answered on its own: one that fails gets its own
error and leaves its batch-mates' answers alone. `initialize` refuses to load files that do not
match the config's `fingerprint` (`conversion.fingerprint`).
Needs `tokenizers` in the stub's Python (the local stack's venv; pip-installed in the image).
"""

import json
import os
import shutil

import numpy as np

# Triton imports this file as `<version>.model`: `fingerprint.py` beside it is `<version>.fingerprint`
from .fingerprint import verify_fingerprint, version_fingerprint

BUCKETS = (16, 32, 64, 128)


def bucket_for(length, buckets=BUCKETS):
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return buckets[-1]


def encode(tokenizer, texts, buckets=BUCKETS):
    """Token ids and attention mask of `texts`, padded to the bucket of the longest one."""
    encodings = tokenizer.encode_batch(list(texts))
    length = bucket_for(max((len(e.ids) for e in encodings), default=1), buckets)
    ids = np.zeros((len(texts), length), dtype=np.int64)
    mask = np.zeros((len(texts), length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        n = min(len(encoding.ids), length)
        ids[row, :n] = encoding.ids[:n]
        mask[row, :n] = 1
    return ids, mask


def load_tokenizer(path, max_length=BUCKETS[-1]):
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
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        verify_fingerprint(args["model_name"], version_dir, parameters.get("fingerprint", ""))
        self.buckets = tuple(int(b) for b in parameters.get("buckets", "16,32,64,128").split(","))
        self.tokenizer = load_tokenizer(
            os.path.join(version_dir, "tokenizer.json"), self.buckets[-1]
        )

    def execute(self, requests):
        return [self._answer(request) for request in requests]  # each keeps its own bucket

    def _answer(self, request):
        """One request's response; a failure is this request's own error object (INTERNAL)."""
        import triton_python_backend_utils as pb_utils

        try:
            raw = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
            texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in raw]
            ids, mask = encode(self.tokenizer, texts, self.buckets)
        except Exception as error:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tokenizer: {error}"))
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("input_ids", ids),
                pb_utils.Tensor("attention_mask", mask),
            ]
        )
