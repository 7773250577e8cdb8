"""Errors the gateway answers with, and how Triton's gRPC status codes map onto them.

The message markers below are written once, here: gateway-grpc's copy is generated from this
module when it is built (gateway-grpc/messages.py), so both front ends map Triton's errors alike.
"""

from __future__ import annotations

from typing import NamedTuple


class QueueRejection(NamedTuple):
    """A request Triton refused from its queue: the marker in Triton's message, the metric's
    `reason` label, and the words the client is told before Triton's own message."""

    marker: str
    reason: str
    answer: str


# Lower-case substrings of the messages of Triton core's request queue (2.51), any status code.
QUEUE_REJECTIONS = (
    QueueRejection("exceeds maximum queue size", "queue_full", "model queue is full"),
    QueueRejection(
        "request timeout expired", "queue_timeout", "request timed out in the model queue"
    ),
    QueueRejection("rate limit", "rate_limited", "rate limited by the inference server"),
)
# Faults ONNX Runtime attributes to the request's input (an id outside the embedding table, a
# tensor of the wrong rank or size): a client mistake that reaches Triton as INTERNAL or UNKNOWN.
INPUT_FAULTS = (
    "index out of range",
    "out of data bounds",
    "invalid rank for input",
    "got invalid dimensions for input",
)
INPUT_FAULT_ANSWER = "the model rejected the input"
# the words of a NOT_FOUND from a Triton whose ServerReady is not true (triton_not_ready)
NOT_READY = "Triton is not ready"
INPUT_FAULT_CODES = ("INTERNAL", "UNKNOWN")
# The most names a message lists (a request with 5,000 unknown names must not get a 5 MB answer).
MAX_LISTED = 10


class GatewayError(Exception):
    """An answer other than success: HTTP status, message, optionally Retry-After seconds and
    other headers, and for a queue rejection its `reason` (queue_full, queue_timeout,
    rate_limited)."""

    def __init__(
        self,
        status: int,
        message: str,
        retry_after_s: int | None = None,
        reason: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        self.reason = reason
        self.headers = headers or {}


def listed(names) -> str:
    """Names as a message lists them, e.g. ['a', 'b']: each between single quotes, written as
    given (gateway-grpc's listText writes the same; Python's repr would switch quotes); beyond
    MAX_LISTED names, the first MAX_LISTED and how many more: ['n0', ..., 'n9'] and 4990 more."""
    names = list(names)
    shown = "[" + ", ".join(f"'{name}'" for name in names[:MAX_LISTED]) + "]"
    return shown if len(names) <= MAX_LISTED else f"{shown} and {len(names) - MAX_LISTED} more"


def unknown_model(model: str, version: str = "") -> GatewayError:
    """Triton 2.51's 404 for a model (or version) it does not serve."""
    shown = f"'{model}' version {version}" if version else f"'{model}'"
    return GatewayError(404, f"Request for unknown model: {shown} is not found")


def triton_not_ready(message: str) -> GatewayError:
    """503 with Retry-After 1 s for Triton's NOT_FOUND from a server that is not ready: during its
    graceful shutdown Triton 2.51 unloads every model and answers "Request for unknown model: 'm'
    has no available versions" for each (measured: ~3 s with this repository), while ServerReady
    answers UNAVAILABLE "Server exiting". A retry reaches the next Triton, or this one restarted;
    the last known model info stays in use meanwhile, so cached answers keep being served."""
    return GatewayError(
        503, f"inference server unavailable: {NOT_READY}: {message}", retry_after_s=1
    )


def from_triton(code: str, message: str) -> GatewayError:
    """Map a Triton gRPC status (e.g. 'StatusCode.INVALID_ARGUMENT') to the client's answer.

    429 with Retry-After 1 s for a queue rejection (any code) or RESOURCE_EXHAUSTED; 400 for
    INVALID_ARGUMENT or an input fault (INTERNAL/UNKNOWN); 404 NOT_FOUND; 504 DEADLINE_EXCEEDED;
    503 with Retry-After 1 s for UNAVAILABLE, CANCELLED, another UNKNOWN or no code; else 502.
    """
    name = code.rsplit(".", 1)[-1]
    lowered = message.lower()
    for rejection in QUEUE_REJECTIONS:
        if rejection.marker in lowered:
            return GatewayError(
                429, f"{rejection.answer}: {message}", retry_after_s=1, reason=rejection.reason
            )
    if name == "RESOURCE_EXHAUSTED":
        return GatewayError(429, f"model queue is full: {message}", retry_after_s=1)
    if name in INPUT_FAULT_CODES and any(marker in lowered for marker in INPUT_FAULTS):
        return GatewayError(400, f"{INPUT_FAULT_ANSWER}: {message}")
    if name == "INVALID_ARGUMENT":
        return GatewayError(400, message)
    if name == "NOT_FOUND":
        return GatewayError(404, message)
    if name == "DEADLINE_EXCEEDED":
        return GatewayError(504, "inference deadline exceeded")
    if name in ("UNAVAILABLE", "CANCELLED", "UNKNOWN") or not name:
        return GatewayError(503, f"inference server unavailable: {message}", retry_after_s=1)
    return GatewayError(502, f"inference server error ({name}): {message}")
