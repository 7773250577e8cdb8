"""Errors the gateway answers with, and how Triton's gRPC status codes map onto them."""

from __future__ import annotations

_QUEUE_REJECTIONS = ("exceeds maximum queue size", "request timeout expired", "rate limit")


class GatewayError(Exception):
    """An answer other than success: HTTP status, message, and optionally Retry-After seconds."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


def from_triton(code: str, message: str) -> GatewayError:
    """Map a Triton gRPC status (e.g. 'StatusCode.INVALID_ARGUMENT') to the client's answer."""
    name = code.rsplit(".", 1)[-1]
    lowered = message.lower()
    if any(marker in lowered for marker in _QUEUE_REJECTIONS) or name == "RESOURCE_EXHAUSTED":
        return GatewayError(429, f"model queue is full: {message}", retry_after_s=1)
    if name == "INVALID_ARGUMENT":
        return GatewayError(400, message)
    if name == "NOT_FOUND":
        return GatewayError(404, message)
    if name == "DEADLINE_EXCEEDED":
        return GatewayError(504, "inference deadline exceeded")
    if name in ("UNAVAILABLE", "CANCELLED", "UNKNOWN") or not name:
        return GatewayError(503, f"inference server unavailable: {message}", retry_after_s=1)
    return GatewayError(502, f"inference server error ({name}): {message}")
