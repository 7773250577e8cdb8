"""Model names and versions as Triton resolves them, so that one model has one name and one
version string in answers, cache keys and metric labels.

Measured on tritonserver 2.51 (tests/conformance pins both front ends to it): Triton's C API cuts
a model name at its first NUL ("digits\\0x" is served as "digits"), and it reads a version with
`std::stol` and answers the number it read ("01" and "00001" are version "1"). The gateway
refuses a name Triton would cut (Triton's 404, as for any unknown model) and writes a version as
the number Triton answers. gateway-grpc/model_names.go is the Go twin.
"""

from __future__ import annotations

from gateway.errors import GatewayError, unknown_model

MAX_VERSION = 2**63 - 1  # Triton reads a version as an int64 (std::stol)


def check_model_name(model: str) -> None:
    """GatewayError 404 (Triton's message for an unknown model) for a name holding a NUL, which
    Triton would cut short and serve as another model."""
    if "\0" in model:
        raise unknown_model(model)


def canonical_version(version: str) -> str:
    """A requested version as Triton answers it: "" (the latest) as is, decimal digits as their
    number without leading zeros ("01" -> "1"). GatewayError 400 for anything else (a sign,
    spaces, letters, a number beyond int64), in Triton's words; Triton's own parser would read
    " 1" or "1x" as 1 and answer version 1 under a second name."""
    if not version:
        return version
    if not (version.isascii() and version.isdigit()) or int(version) > MAX_VERSION:
        raise GatewayError(
            400,
            f"invalid model version specified '{version}' , version should be an integral "
            "value > 0",
        )
    return str(int(version))
