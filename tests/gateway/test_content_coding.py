"""Request bodies in gzip or deflate, answers in the coding a client accepts, as Triton does."""

import gzip
import tracemalloc
import zlib

import pytest

from gateway.content_coding import decoded_body, encoded, response_coding
from gateway.errors import GatewayError

BODY = b'{"inputs": []}' * 100


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("GZIP", gzip.compress)],
)
def test_gzip_and_deflate_bodies_are_inflated(coding, compress):
    assert decoded_body(compress(BODY), coding, 1 << 20) == BODY


def test_identity_or_no_coding_is_the_body_as_is():
    assert decoded_body(BODY, None, 1 << 20) is BODY
    assert decoded_body(BODY, "identity", 1 << 20) is BODY


def test_another_coding_is_a_415_that_says_which_are_accepted():
    with pytest.raises(GatewayError) as raised:
        decoded_body(BODY, "br", 1 << 20)
    assert raised.value.status == 415
    assert raised.value.headers == {"Accept-Encoding": "gzip, deflate"}


def gzip_bomb(megabytes: int) -> bytes:
    """`megabytes` MiB of zeros, gzipped (about 1 kB per MiB), made a MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(megabytes)) + compressor.flush()


def test_a_gzip_bomb_is_a_413_without_inflating_past_the_limit():
    bomb = gzip_bomb(256)
    tracemalloc.start()
    with pytest.raises(GatewayError) as raised:
        decoded_body(bomb, "gzip", 8 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert raised.value.status == 413 and "once decompressed" in raised.value.message
    assert peak < 3 * (8 << 20)


def test_a_gzip_body_of_several_members_is_their_concatenation():
    body = gzip.compress(BODY[:500]) + gzip.compress(BODY[500:])
    assert decoded_body(body, "gzip", 1 << 20) == BODY


def test_members_together_are_held_to_the_limit():
    with pytest.raises(GatewayError) as raised:
        decoded_body(gzip.compress(BODY) * 3, "gzip", 2 * len(BODY))
    assert raised.value.status == 413


@pytest.mark.parametrize(
    ("data", "coding"),
    [(gzip.compress(BODY) + b"junk", "gzip"), (zlib.compress(BODY) * 2, "deflate")],
)
def test_bytes_after_the_compressed_data_are_a_400_saying_how_many(data, coding):
    with pytest.raises(GatewayError) as raised:
        decoded_body(data, coding, 1 << 20)
    assert raised.value.status == 400
    assert raised.value.message.endswith(" bytes after its end")


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(BODY)[:-12]])
def test_data_that_does_not_inflate_is_a_400(data):
    with pytest.raises(GatewayError) as raised:
        decoded_body(data, "gzip", 1 << 20)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (None, "identity"),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate", "gzip"),  # a tie: the first wins, as in Triton
        ("deflate, gzip", "deflate"),
        ("deflate;q=0.5, gzip", "gzip"),
        ("gzip;q=0.2, identity;q=0.5", "identity"),
        ("br, zstd", "identity"),
        ("gzip;q=nonsense, deflate;q=0.1", "deflate"),
    ],
)
def test_the_answer_coding_is_the_accepted_one_of_highest_weight(accept, coding):
    assert response_coding(accept) == coding


def test_answers_are_compressed_as_zlib_writes_gzip_and_deflate():
    assert gzip.decompress(encoded(BODY, "gzip")) == BODY
    assert zlib.decompress(encoded(BODY, "deflate")) == BODY
    assert encoded(BODY, "identity") is BODY
