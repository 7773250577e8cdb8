"""Triton's gRPC status codes become the HTTP answers a client can act on."""

import pytest

from gateway.errors import from_triton


@pytest.mark.parametrize(
    ("code", "message", "status", "retry_after"),
    [
        ("StatusCode.INVALID_ARGUMENT", "unexpected shape", 400, None),
        ("StatusCode.NOT_FOUND", "Request for unknown model", 404, None),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", 504, None),
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", 503, 1),
        ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", 429, 1),
        ("StatusCode.UNAVAILABLE", "Request timeout expired", 429, 1),
        ("StatusCode.RESOURCE_EXHAUSTED", "too big", 429, 1),
        ("StatusCode.INTERNAL", "onnxruntime: bad things", 502, None),
    ],
)
def test_triton_status_maps_to_http_status(code, message, status, retry_after):
    error = from_triton(code, message)
    assert (error.status, error.retry_after_s) == (status, retry_after)
