"""Triton python-backend model: BYTES `text` [1] -> INT64 `input_ids`, `attention_mask` [-1].

Copied as `<repo>/<model>_tokenizer/1/model.py` next to any Hugging Face `tokenizer.json`
(config parameters: `buckets`, e.g. "16,32,64,128", and `pad_id`). Each request is padded
to the smallest length bucket (16/32/64/128) that holds its longest sentence, so requests of one
bucket have equal shapes and Triton's dynamic batcher can batch them for the encoder.
Needs `tokenizers` in the stub's Python (the local stack's venv; pip-installed in the image).
"""

import json
import os

import numpy as np

BUCKETS = (16, 32, 64, 128)


def bucket_for(length, buckets=BUCKETS):
    """The smallest bucket that holds `length` tokens (the largest one when none does)."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return buckets[-1]


def encode(tokenizer, texts, buckets=BUCKETS, pad_id=0):
    """Token ids (`pad_id` after the text) and attention mask of `texts`, INT64 [len(texts),
    bucket], padded to the bucket of the longest one (truncated at the largest bucket)."""
    encodings = tokenizer.encode_batch(list(texts))
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


class TritonPythonModel:
    """The python-backend model (Triton python_backend's TritonPythonModel interface)."""

    def initialize(self, args):
        """Read the buckets and padding id from the config, load <version>/tokenizer.json."""
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.buckets = tuple(int(b) for b in parameters.get("buckets", "16,32,64,128").split(","))
        self.pad_id = int(parameters.get("pad_id", "0"))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.tokenizer = load_tokenizer(
            os.path.join(version_dir, "tokenizer.json"), self.buckets[-1]
        )

    def execute(self, requests):
        """One response per request: its texts tokenized to its own bucket; an error answers that request only."""
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:  # each request keeps its own bucket
            try:
                raw = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
                texts = [
                    t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in raw
                ]
                ids, mask = encode(self.tokenizer, texts, self.buckets, self.pad_id)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor("input_ids", ids),
                            pb_utils.Tensor("attention_mask", mask),
                        ]
                    )
                )
            except Exception as error:
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tokenizer: {error}"))
                )
        return responses
