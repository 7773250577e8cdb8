"""Gateway settings, read from `GATEWAY_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None)

    host: str = Field("127.0.0.1", description="HTTP bind address.")
    port: int = Field(8080, description="HTTP port.")
    grpc_port: int = Field(8081, description="KServe v2 gRPC port, served by `gateway-grpc`.")
    grpc_metrics_port: int = Field(
        8082, description="`gateway-grpc`'s /metrics, /healthz and /readyz (HTTP)."
    )
    workers: int = Field(1, description="Worker processes (uvicorn); each has its own pools.")
    cpus: Annotated[list[int], NoDecode] = Field(
        [],
        description="Pin worker i, all its threads, to the i-th of these CPUs, round-robin, e.g. "
        "`0,1`; keeps the hand-offs between gRPC's threads (calls to Triton) on one core. Empty: no pinning.",
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
    cache_ttl_s: int = Field(3600, description="Time to live of a cached prediction.")
    cache_model_ttl_s: dict[str, int] = Field(
        {}, description='Per-model TTL as JSON, e.g. {"digits": 60}; 0 disables caching a model.'
    )
    cache_max_value_bytes: int = Field(1 << 20, description="Larger responses are not cached.")
    redis_timeout_ms: int = Field(50, description="Redis connect and command timeout.")
    redis_retry_after_s: float = Field(
        1.0, description="After a Redis error, skip the cache this long."
    )
    triton_timeout_ms: int = Field(10_000, description="Deadline of one inference (-> 504).")
    model_info_ttl_s: float = Field(
        1.0, description="How long model metadata and fingerprint are reused."
    )
    max_in_flight: int = Field(256, description="Concurrent requests before load shedding (429).")
    max_body_bytes: int = Field(8 << 20, description="Largest request body (-> 413).")
    api_keys: CommaList = Field(
        [], description="Accepted X-API-Key values, comma-separated; empty = open."
    )

    @field_validator("triton_url", "api_keys", "cpus", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def key_accepted(self, given: str) -> bool:
        """True when auth is off or `given` is a configured key (constant-time, every key compared)."""
        if not self.api_keys:
            return True
        matches = [hmac.compare_digest(given.encode(), key.encode()) for key in self.api_keys]
        return any(matches)

    def ttl_for(self, model: str) -> int:
        return self.cache_model_ttl_s.get(model, self.cache_ttl_s) if self.cache_enabled else 0


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_table() -> str:
    """The Markdown table of every GATEWAY_* variable, as the README shows it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = ",".join(default) if isinstance(default, list) else default
        shown = shown if shown not in ("", {}) else "(none)"
        rows.append(f"| `GATEWAY_{name.upper()}` | `{shown}` | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
