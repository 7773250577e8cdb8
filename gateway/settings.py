"""Gateway settings, read from `GATEWAY_*` environment variables (pydantic-settings).

gateway-grpc reads the same variables alike (gateway-grpc/settings.go; tests/conformance pins both):
names in upper case, spaces around a value dropped, integers and numbers in plain decimal (no
`1_000`, no `60.0` for an integer, no `inf` or `nan`), lists comma-separated, per-model TTLs as a
JSON object of integers.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AliasGenerator, Field, StrictInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
NonNegative = Annotated[int, Field(ge=0)]
# uvicorn workers per CPU at most: each is a process (~65 MB) and CPU-bound beyond that
WORKERS_PER_CPU = 4
# upper bounds, as gateway-grpc/settings.go's outOfRange (a Go time.Duration holds ~292 years)
MAX_MS, MAX_S, MAX_INT32 = 86_400_000, 86_400.0, 2**31 - 1
TTL = Annotated[StrictInt, Field(ge=0, le=MAX_INT32)]
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class Settings(BaseSettings):
    """The gateway's settings: each field from `GATEWAY_<FIELD>`, else its default; units are in
    the names (`_ms` milliseconds, `_s` seconds, `_bytes` bytes).

    Raises pydantic's ValidationError for a number that is not a plain decimal or is out of its
    range (ports 1-65535; counts, timeouts and sizes at least 1, timeouts at most a day, other
    numbers at most 2^31-1, workers at most 4 per CPU; TTLs, delays, CPU indices and
    the cacheable size at least 0: gateway-grpc/settings.go `outOfRange` alike), an empty
    GATEWAY_TRITON_URL, or a per-model TTL that is not an integer.
    """

    # The variable of each field is GATEWAY_ and its name in upper case, exactly (as os.LookupEnv
    # finds it in gateway-grpc); fields are also set by name in code.
    model_config = SettingsConfigDict(
        env_file=None,
        case_sensitive=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: f"GATEWAY_{name.upper()}"),
        validate_by_name=True,
    )

    host: str = Field("127.0.0.1", description="HTTP bind address.")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port.")
    grpc_port: int = Field(
        8081, ge=1, le=65535, description="KServe v2 gRPC port, served by `gateway-grpc`."
    )
    grpc_metrics_port: int = Field(
        8082, ge=1, le=65535, description="`gateway-grpc`'s /metrics, /healthz and /readyz (HTTP)."
    )
    workers: int = Field(
        1,
        ge=1,
        description=f"Worker processes (uvicorn), at most {WORKERS_PER_CPU} per CPU this process may "
        "use; each has its own pools.",
    )
    cpus: Annotated[list[NonNegative], NoDecode] = Field(
        [],
        description="Pin worker i, all its threads, to the i-th of these CPUs, round-robin, e.g. "
        "`0,1` (each >= 0); keeps the hand-offs between gRPC's threads (calls to Triton) on one core. "
        "Empty: no pinning.",
    )
    triton_url: CommaList = Field(
        ["127.0.0.1:8001"],
        description="Triton gRPC endpoints, comma-separated; a DNS name resolving to several "
        "addresses counts as several.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the prediction cache."
    )
    cache_enabled: bool = Field(True, description="Master switch for the prediction cache.")
    cache_ttl_s: int = Field(
        3600, ge=0, le=MAX_INT32, description="Time to live of a cached prediction."
    )
    cache_model_ttl_s: Annotated[dict[str, TTL], NoDecode] = Field(
        {},
        description='Per-model TTL as a JSON object of integers, e.g. {"digits": 60}; each in '
        "the range of GATEWAY_CACHE_TTL_S; 0 disables caching a model.",
    )
    cache_max_value_bytes: int = Field(
        1 << 20, ge=0, le=MAX_INT32, description="Larger responses are not cached."
    )
    redis_timeout_ms: int = Field(
        50, ge=1, le=MAX_MS, description="Redis connect and command timeout."
    )
    redis_retry_after_s: float = Field(
        1.0, ge=0, le=MAX_S, description="After a Redis error, skip the cache this long."
    )
    triton_timeout_ms: int = Field(
        10_000, ge=1, le=MAX_MS, description="Deadline of one inference (-> 504)."
    )
    model_info_ttl_s: float = Field(
        1.0, ge=0, le=MAX_S, description="How long model metadata and fingerprint are reused."
    )
    max_in_flight: int = Field(
        256, ge=1, le=MAX_INT32, description="Concurrent requests before load shedding (429)."
    )
    max_body_bytes: int = Field(
        8 << 20, ge=1, le=MAX_INT32, description="Largest request body (-> 413)."
    )
    api_keys: CommaList = Field(
        [], description="Accepted X-API-Key values, comma-separated; empty = open."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _plain(cls, value: Any, info) -> Any:
        """Spaces around a value are dropped; numbers must be plain decimals (what Go parses)."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        kind = cls.model_fields[info.field_name].annotation
        if kind is int and not INTEGER.fullmatch(value):
            raise ValueError(f"{value!r} is not a decimal integer")
        if kind is float and not (NUMBER.fullmatch(value) and math.isfinite(float(value))):
            raise ValueError(f"{value!r} is not a finite decimal number")
        return value

    @field_validator("cache_model_ttl_s", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """A JSON object, parsed here (not by pydantic-settings) so that malformed JSON is a
        ValidationError naming the variable, as every other bad value is."""
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON ({error.msg} at character {error.pos})") from None
        if not isinstance(parsed, dict):
            raise ValueError('not a JSON object of integers, e.g. {"digits": 60}')
        return parsed

    @field_validator("workers")
    @classmethod
    def _workers_per_cpu(cls, value: int) -> int:
        limit = WORKERS_PER_CPU * len(os.sched_getaffinity(0))
        if value > limit:
            raise ValueError(f"at most {limit} ({WORKERS_PER_CPU} per CPU this process may use)")
        return value

    @field_validator("triton_url", "api_keys", "cpus", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("triton_url")
    @classmethod
    def _some_endpoint(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("no endpoint given")
        return value

    def key_accepted(self, given: str) -> bool:
        """True when auth is off or `given` is a configured key (constant-time, every key compared)."""
        if not self.api_keys:
            return True
        matches = [hmac.compare_digest(given.encode(), key.encode()) for key in self.api_keys]
        return any(matches)

    def ttl_for(self, model: str) -> int:
        """Seconds a prediction of `model` stays cached: its GATEWAY_CACHE_MODEL_TTL_S entry, else
        GATEWAY_CACHE_TTL_S; 0 (not cached) when the cache is off or the model's entry is 0."""
        return self.cache_model_ttl_s.get(model, self.cache_ttl_s) if self.cache_enabled else 0


@lru_cache
def get_settings() -> Settings:
    """The process's Settings, read from the environment on the first call and then reused;
    pydantic's ValidationError for a malformed GATEWAY_* variable."""
    return Settings()


def settings_table() -> str:
    """The Markdown table of every GATEWAY_* variable, as the README shows it."""
    rows = ["| variable | default | range | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = ",".join(default) if isinstance(default, list) else default
        shown = shown if shown not in ("", {}) else "(none)"
        low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        span = f"{low}-{high}" if high is not None else (f">= {low}" if low is not None else "")
        rows.append(f"| `GATEWAY_{name.upper()}` | `{shown}` | {span} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
