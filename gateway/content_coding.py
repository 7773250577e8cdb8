"""HTTP content codings of inference requests and answers, as Triton 2.51's HTTP server does them.

Requests: `Content-Encoding: gzip` or `deflate` (zlib) bodies are inflated (either header is
accepted for either name, as Triton's `inflateInit2(15 | 32)` does; a gzip body of several
members is their concatenation, RFC 1952 2.2; bytes after the data are a 400); `identity` or
none is the body as is; any other coding is a 415 with `Accept-Encoding: gzip, deflate` (Triton
answers 501 with that header). The body limit applies to the inflated size, and inflating stops
one byte past it: a gzip bomb costs at most the limit in memory, never more.

Answers: `Accept-Encoding` picks gzip, deflate or identity by the highest q-value, the first of
equal ones winning (Triton's CompressionTypeUsed in src/http_server.cc); the whole body, JSON
header and binary data together, is compressed at zlib's default level.
"""

from __future__ import annotations

import zlib

from gateway.errors import GatewayError

CODINGS = ("identity", "gzip", "deflate")
_WBITS = {"gzip": 31, "deflate": 15}
GZIP_MAGIC = b"\x1f\x8b"
ACCEPTED = {"Accept-Encoding": "gzip, deflate"}


def decoded_body(
    body: bytes, content_encoding: str | None, max_bytes: int, too_large: str = ""
) -> bytes:
    """The request body without its content coding, at most `max_bytes` long.

    Raises GatewayError 415 for an unsupported coding, 413 past `max_bytes` once inflated (with
    the message `too_large`), 400 for data that does not inflate.
    """
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding not in _WBITS:
        raise GatewayError(
            415, f"Unsupported compression type '{content_encoding}'", headers=ACCEPTED
        )
    members, size, rest = [], 0, body
    while True:  # a gzip body may be several members, one after another (RFC 1952, 2.2)
        member, rest = _inflate(rest, coding, max_bytes + 1 - size)
        members.append(member)
        size += len(member)
        if size > max_bytes:
            raise GatewayError(
                413, too_large or f"request body larger than {max_bytes} bytes once decompressed"
            )
        if not rest:
            return b"".join(members)
        if coding != "gzip" or not rest.startswith(GZIP_MAGIC):
            raise GatewayError(
                400,
                f"request body is not valid {coding} data: {len(rest)} bytes after its end",
            )


def _inflate(data: bytes, coding: str, limit: int) -> tuple[bytes, bytes]:
    """(what the first zlib or gzip stream of `data` inflates to, at most `limit` bytes; the
    bytes after that stream). GatewayError 400 for data that does not inflate or stops short;
    past `limit` the stream is left unfinished and the caller's size check answers."""
    inflater = zlib.decompressobj(wbits=47)  # zlib or gzip header, as Triton reads either
    try:
        inflated = inflater.decompress(data, limit)
    except zlib.error as error:
        raise GatewayError(400, f"request body is not valid {coding} data: {error}") from None
    if len(inflated) < limit and not inflater.eof:
        raise GatewayError(400, f"request body is not valid {coding} data: truncated")
    return inflated, inflater.unused_data


def response_coding(accept_encoding: str | None) -> str:
    """identity, gzip or deflate: the accepted coding of highest q-value, the first on a tie
    (Triton 2.51 src/http_server.cc, CompressionTypeUsed). q=0, an unknown coding or an
    unparsable q-value is never chosen; nothing acceptable: identity."""
    chosen, weight = "identity", 0.0
    for item in (accept_encoding or "").split(","):
        name, _, q = item.strip().partition(";q=")
        try:
            item_weight = float(q) if q else 1.0
        except ValueError:
            continue
        if name in CODINGS and item_weight > weight:
            chosen, weight = name, item_weight
    return chosen


def encoded(body: bytes, coding: str) -> bytes:
    """`body` in `coding` at zlib's default level: identity (as is), gzip (RFC 1952) or
    deflate (a zlib stream, RFC 1950); KeyError for any other name."""
    if coding == "identity":
        return body
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, _WBITS[coding])
    return compressor.compress(body) + compressor.flush()
