"""The benchmarks' traffic: what the tuner, optimize-compare and text_path send."""

from __future__ import annotations

from collections import Counter

from benchmarks import payloads
from conversion import minilm, tokenizer_model


def test_the_text_traffic_is_distinct_sentences_over_more_than_one_length_bucket():
    sentences = payloads.short_sentences(512)
    tokenizer = minilm.load_tokenizer()

    buckets = Counter(
        tokenizer_model.encode(tokenizer, [s], tokenizer_model.BUCKETS)[0].shape[1]
        for s in sentences
    )

    assert len(set(sentences)) == len(sentences) == 512
    assert len(buckets) >= 2 and min(buckets.values()) >= 512 // 4, buckets
    assert not any('"' in s or "\\" in s for s in sentences)
