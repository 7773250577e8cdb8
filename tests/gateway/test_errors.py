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


ORT_FAULT = (
    "onnxruntime: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned "
    "while running QEmbedLayerNormalization node. Status Message: input index out of range"
)


@pytest.mark.parametrize(
    ("code", "message", "status", "answer", "reason"),
    [
        ("UNAVAILABLE", "Exceeds maximum queue size", 429, "model queue is full: ", "queue_full"),
        (
            "UNAVAILABLE",
            "Request timeout expired",
            429,
            "request timed out in the model queue: ",
            "queue_timeout",
        ),
        ("INTERNAL", ORT_FAULT, 400, "the model rejected the input: ", ""),
        ("UNKNOWN", "Invalid rank for input: image Got: 3 Expected: 4", 400, "the model", ""),
        ("INTERNAL", "Got invalid dimensions for input: image for the following", 400, "the ", ""),
        ("INTERNAL", "onnxruntime: bad things", 502, "inference server error (INTERNAL): ", ""),
        ("UNKNOWN", "stub crashed", 503, "inference server unavailable: ", ""),
        ("INVALID_ARGUMENT", "index out of range", 400, "index out of range", ""),
    ],
)
def test_queue_rejections_keep_their_reason_and_input_faults_are_client_mistakes(
    code, message, status, answer, reason
):
    """The same messages as gateway-grpc/triton_test.go, with the same answers."""
    error = from_triton(f"StatusCode.{code}", message)
    assert (error.status, error.reason) == (status, reason)
    assert error.message.startswith(answer) and message in error.message
