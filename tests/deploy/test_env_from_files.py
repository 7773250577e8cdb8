"""docker/env-from-files.sh, the gateway image's entrypoint: GATEWAY_<NAME>_FILE -> GATEWAY_<NAME>."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import DOCKER_DIR, explain, find_tool, run

SCRIPT = DOCKER_DIR / "env-from-files.sh"


def environment_after(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`env-from-files env` with exactly `env` (and PATH): the environment the command gets."""
    return run(["sh", str(SCRIPT), "env"], env={"PATH": "/usr/bin:/bin", **env})


def exported(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def test_shellcheck_clean():
    proc = run([find_tool("shellcheck"), "--severity=style", str(SCRIPT)])
    assert proc.returncode == 0, explain(proc)


def test_each_gateway_file_setting_becomes_the_setting_without_its_trailing_newline(tmp_path: Path):
    (tmp_path / "keys").write_text("k1,k2\n")
    (tmp_path / "url").write_text("redis://:p%40ss@redis:6379/0\n")

    proc = environment_after(
        {
            "GATEWAY_API_KEYS_FILE": str(tmp_path / "keys"),
            "GATEWAY_REDIS_URL_FILE": str(tmp_path / "url"),
            "GATEWAY_PORT": "8080",
        }
    )

    assert proc.returncode == 0, explain(proc)
    env = exported(proc)
    assert env["GATEWAY_API_KEYS"] == "k1,k2"
    assert env["GATEWAY_REDIS_URL"] == "redis://:p%40ss@redis:6379/0"
    assert env["GATEWAY_PORT"] == "8080"
    assert not any(name.endswith("_FILE") for name in env), "the _FILE settings are consumed"


def test_other_file_variables_are_left_alone():
    proc = environment_after({"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})

    assert proc.returncode == 0, explain(proc)
    env = exported(proc)
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert "SSL_CERT" not in env


def test_a_setting_given_both_ways_is_refused(tmp_path: Path):
    (tmp_path / "keys").write_text("from-file")

    proc = environment_after(
        {"GATEWAY_API_KEYS": "direct", "GATEWAY_API_KEYS_FILE": str(tmp_path / "keys")}
    )

    assert proc.returncode == 1
    assert "both GATEWAY_API_KEYS and GATEWAY_API_KEYS_FILE are set" in proc.stderr
    assert not proc.stdout, "the command does not run"


def test_an_unreadable_file_is_refused_with_its_name(tmp_path: Path):
    proc = environment_after({"GATEWAY_API_KEYS_FILE": str(tmp_path / "missing")})

    assert proc.returncode == 1
    assert f"GATEWAY_API_KEYS_FILE: cannot read {tmp_path / 'missing'}" in proc.stderr
    assert not proc.stdout
