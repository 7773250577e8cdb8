import json
import time

import numpy as np
import pytest
import torch

from conversion import minilm, tokenizer_model
from conversion.fingerprint import FingerprintMismatch, version_fingerprint


@pytest.fixture(scope="module")
def tokenizer():
    return tokenizer_model.load_tokenizer(str(minilm.tokenizer_file()))


@pytest.mark.parametrize(
    ("length", "bucket"), [(1, 16), (16, 16), (17, 32), (64, 64), (65, 128), (500, 128)]
)
def test_lengths_map_to_the_smallest_bucket_that_holds_them(length, bucket):
    assert tokenizer_model.bucket_for(length) == bucket


def test_requests_are_padded_to_their_bucket_with_a_matching_mask(tokenizer):
    ids, mask = tokenizer_model.encode(
        tokenizer, ["hi", "a somewhat longer sentence than the first"]
    )
    assert ids.shape == mask.shape == (2, 16) and ids.dtype == np.int64
    assert mask[0].sum() == 3  # [CLS] hi [SEP]
    long_ids, _ = tokenizer_model.encode(tokenizer, ["word " * 40])
    assert long_ids.shape == (1, 64)
    truncated, truncated_mask = tokenizer_model.encode(tokenizer, ["word " * 400])
    assert truncated.shape == (1, 128) and truncated_mask.sum() == 128


def test_the_serving_tokenizer_gives_the_same_embedding_as_the_conversion_tokenizer(tokenizer):
    model = minilm.load_model()
    sentences = ["The chef baked fresh bread.", "Investors reacted calmly to rising inflation."]
    ids, mask = tokenizer_model.encode(tokenizer, sentences)
    feed = minilm.tokenize(minilm.load_tokenizer(), sentences)
    assert np.array_equal(ids, feed["input_ids"]) and np.array_equal(mask, feed["attention_mask"])
    with torch.no_grad():
        padded = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        unpadded = np.concatenate(
            [
                model(
                    torch.from_numpy(ids[i : i + 1, : mask[i].sum()]),
                    torch.from_numpy(mask[i : i + 1, : mask[i].sum()]),
                ).numpy()
                for i in range(2)
            ]
        )
    assert np.allclose(
        padded, unpadded, atol=1e-5
    )  # padding to a bucket does not change the answer


class Recording:
    """The real tokenizer, recording the texts it is given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

    def encode_batch(self, texts):
        self.seen += texts
        return self.tokenizer.encode_batch(texts)


def test_a_huge_text_is_cut_to_the_character_budget_before_it_is_tokenized(tokenizer):
    huge = "abc123 " * 600_000  # 4.2 MB: ~10 s of CPU when tokenized whole (issue t9)
    recording = Recording(tokenizer)
    started = time.perf_counter()
    ids, mask = tokenizer_model.encode(recording, [huge, "short"])
    elapsed = time.perf_counter() - started
    assert [len(t) for t in recording.seen] == [tokenizer_model.max_chars(), 5]
    assert tokenizer_model.max_chars() == 32 * 128
    assert ids.shape == (2, 128) and mask[0].sum() == 128
    assert elapsed < 2.0  # the whole text took 9.5 s; the budget takes milliseconds


def test_a_normal_texts_tokens_are_the_same_with_and_without_the_budget(tokenizer):
    texts = [
        *minilm.validation_sentences(32),
        " ".join(minilm.validation_sentences(40)),  # far past 128 tokens: truncated either way
        "Ünïcödé wörds, URLs like https://example.com/a/b?c=d and numbers 3.14159 " * 20,
    ]
    unbounded = tokenizer_model.encode(tokenizer, texts, limit=10**9)
    bounded = tokenizer_model.encode(tokenizer, texts)
    assert all(np.array_equal(a, b) for a, b in zip(unbounded, bounded, strict=True))


def test_a_huge_bytes_element_is_decoded_only_up_to_the_budget():
    text = tokenizer_model.decode_text("é€𝄞".encode() * 1_000_000, 10)
    assert text == "é€𝄞é€𝄞é€𝄞é" and "\ufffd" not in text
    assert tokenizer_model.decode_text(b"\xff" + b"a" * 100, 3) == "\ufffdaa"


def model_args(version_dir, fingerprint: str) -> dict:
    """What Triton's python backend passes to `initialize` (the keys this model reads)."""
    config = {"parameters": {"fingerprint": {"string_value": fingerprint}}}
    return {
        "model_config": json.dumps(config),
        "model_name": "minilm_tokenizer",
        "model_repository": str(version_dir.parent),
        "model_version": version_dir.name,
    }


def test_a_version_holds_the_model_its_fingerprint_module_and_the_tokenizer(tmp_path):
    stamp = tokenizer_model.write_version(tmp_path / "1", minilm.tokenizer_file())
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == [
        "fingerprint.py",
        "model.py",
        "tokenizer.json",
    ]
    assert stamp == version_fingerprint(tmp_path / "1")
    model = tokenizer_model.TritonPythonModel()
    model.initialize(model_args(tmp_path / "1", stamp))
    assert model.tokenizer.encode("hi").ids == [101, 7632, 102]


def test_it_refuses_to_load_a_tokenizer_file_its_config_does_not_describe(tmp_path):
    stamp = tokenizer_model.write_version(tmp_path / "1", minilm.tokenizer_file())
    with (tmp_path / "1/tokenizer.json").open("a") as handle:
        handle.write("\n")
    with pytest.raises(FingerprintMismatch, match=r"model minilm_tokenizer.*re-run the converter"):
        tokenizer_model.TritonPythonModel().initialize(model_args(tmp_path / "1", stamp))
