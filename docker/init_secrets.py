"""The compose stack's one-shot `init` service: the secrets every other service reads from files.

Each secret is taken from the environment when given there (compose passes GATEWAY_API_KEYS,
REDIS_PASSWORD and GRAFANA_ADMIN_PASSWORD from the shell or ./.env); otherwise it is generated once
(`secrets.token_urlsafe`, 256 bits) and kept in the consumer's volume, so later starts reuse it.
A given value wins over a generated one for as long as it is given. One volume per consumer, each
mounted read-only by that consumer only:

    /run/secrets/gateway/api_keys         comma-separated API keys    (GATEWAY_API_KEYS_FILE)
    /run/secrets/gateway/redis_url        redis://:<password>@<REDIS_ADDRESS>/0 (GATEWAY_REDIS_URL_FILE)
    /run/secrets/redis/redis.conf         `requirepass`, read by redis-server
    /run/secrets/redis/password           the password alone (the healthcheck's REDISCLI_AUTH)
    /run/secrets/redis/exporter.json      {"redis://<REDIS_ADDRESS>": password}: redis_exporter's
                                          REDIS_PASSWORD_FILE format
    /run/secrets/grafana/admin_password   GF_SECURITY_ADMIN_PASSWORD__FILE
    /run/secrets/loadtest/api_key         the first API key, for Locust (LOCUST_API_KEY_FILE)

The API key and the Grafana admin password are printed when generated (`docker compose logs init`),
as other stacks print a first password; given values are never printed, nor is the Redis password.
Standard library only: it runs in a bare Python image.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SECRETS_ROOT = Path(os.environ.get("SECRETS_ROOT", "/run/secrets"))
GENERATED_PREFIX = ".generated-"


@dataclass(frozen=True)
class Secret:
    """One secret: the variable that gives it and the volume (folder) that keeps it."""

    variable: str
    folder: str
    name: str

    def generated_path(self, root: Path) -> Path:
        return root / self.folder / f"{GENERATED_PREFIX}{self.name}"


API_KEYS = Secret("GATEWAY_API_KEYS", "gateway", "api_keys")
REDIS_PASSWORD = Secret("REDIS_PASSWORD", "redis", "password")
GRAFANA_PASSWORD = Secret("GRAFANA_ADMIN_PASSWORD", "grafana", "admin_password")


def resolve(secret: Secret, env: dict[str, str], root: Path) -> tuple[str, str]:
    """(value, origin) of `secret`: origin is "given", "generated" (now) or "kept" (generated on an
    earlier start and read back from its volume)."""
    given = env.get(secret.variable, "").strip()
    if given:
        return given, "given"
    path = secret.generated_path(root)
    if path.is_file():
        return path.read_text().strip(), "kept"
    value = secrets.token_urlsafe(32)
    write(path, value)
    return value, "generated"


def write(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by every uid (each volume is mounted only by
    the one service that needs it, read-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text + "\n")
    partial.chmod(0o444)
    os.replace(partial, path)


def redis_config_string(value: str) -> str:
    """`value` as a double-quoted redis.conf argument (backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_files(
    root: Path, api_keys: str, redis_password: str, grafana_password: str, redis_address: str
) -> None:
    """Write every consumer file from the resolved values."""
    write(root / "gateway" / "api_keys", api_keys)
    write(
        root / "gateway" / "redis_url",
        f"redis://:{quote(redis_password, safe='')}@{redis_address}/0",
    )
    write(root / "redis" / "password", redis_password)
    write(root / "redis" / "redis.conf", f"requirepass {redis_config_string(redis_password)}")
    write(
        root / "redis" / "exporter.json", json.dumps({f"redis://{redis_address}": redis_password})
    )
    write(root / "grafana" / "admin_password", grafana_password)
    write(root / "loadtest" / "api_key", api_keys.split(",")[0].strip())


def report(name: str, value: str, origin: str) -> str:
    if origin == "given":
        return f"{name}: given by the environment (not printed)"
    return f"{name}: {value}" + (
        "  (generated on this first start)" if origin == "generated" else ""
    )


def main(env: dict[str, str] = os.environ, root: Path = SECRETS_ROOT) -> int:
    """Resolve the three secrets, write the consumer files, print the API key; returns 0."""
    api_keys, keys_origin = resolve(API_KEYS, env, root)
    redis_password, _ = resolve(REDIS_PASSWORD, env, root)
    grafana_password, grafana_origin = resolve(GRAFANA_PASSWORD, env, root)
    write_files(
        root, api_keys, redis_password, grafana_password, env.get("REDIS_ADDRESS", "redis:6379")
    )
    print(report("API key (send it as X-API-Key)", api_keys, keys_origin))
    print(report("Grafana admin password", grafana_password, grafana_origin))
    print("Redis password: stored in the redis-secrets volume (not printed)")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
