"""docker/init_secrets.py, the compose stack's one-shot `init`: given secrets win, the others are
generated once and kept, each consumer's files are written, the API key is printed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from .conftest import DOCKER_DIR, free_port

spec = importlib.util.spec_from_file_location("init_secrets", DOCKER_DIR / "init_secrets.py")
init_secrets = importlib.util.module_from_spec(spec)
sys.modules["init_secrets"] = init_secrets  # dataclasses look their module up while defining
spec.loader.exec_module(init_secrets)

KEY_LINE = "API key (send it as X-API-Key): "


def start(root: Path, capsys, **given: str) -> str:
    """One `init` run on `root` with `given` as its environment; its printed output."""
    assert init_secrets.main({"REDIS_ADDRESS": "redis:6379", **given}, root) == 0
    return capsys.readouterr().out


def read(root: Path, relative: str) -> str:
    return (root / relative).read_text().strip()


def printed_key(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(KEY_LINE))
    return line.removeprefix(KEY_LINE).split()[0]


def test_a_first_start_generates_every_secret_and_prints_the_api_key(tmp_path, capsys):
    output = start(tmp_path, capsys)

    key = printed_key(output)
    assert f"{KEY_LINE}{key}  (generated on this first start)" in output
    assert len(key) >= 40 and read(tmp_path, "gateway/api_keys") == key
    assert read(tmp_path, "loadtest/api_key") == key
    password = read(tmp_path, "redis/password")
    assert len(password) >= 40 and password not in output, "the Redis password is never printed"
    assert read(tmp_path, "redis/redis.conf") == f'requirepass "{password}"'
    assert read(tmp_path, "gateway/redis_url") == f"redis://:{password}@redis:6379/0"
    assert json.loads(read(tmp_path, "redis/exporter.json")) == {"redis://redis:6379": password}
    grafana = read(tmp_path, "grafana/admin_password")
    assert f"Grafana admin password: {grafana}  (generated on this first start)" in output
    assert len({key, password, grafana}) == 3


def test_every_file_is_readable_by_its_reader_whatever_its_uid(tmp_path, capsys):
    start(tmp_path, capsys)

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o777 == 0o444 for p in files)


def test_a_later_start_keeps_the_generated_secrets(tmp_path, capsys):
    first = start(tmp_path, capsys)
    files = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}

    second = start(tmp_path, capsys)

    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == files
    assert f"{KEY_LINE}{printed_key(first)}\n" in second, "printed again, no longer as new"


def test_given_secrets_win_and_are_not_printed(tmp_path, capsys):
    start(tmp_path, capsys)

    output = start(
        tmp_path,
        capsys,
        GATEWAY_API_KEYS="given-1,given-2",
        REDIS_PASSWORD="given-redis",
        GRAFANA_ADMIN_PASSWORD="given-grafana",
    )

    assert read(tmp_path, "gateway/api_keys") == "given-1,given-2"
    assert read(tmp_path, "loadtest/api_key") == "given-1"
    assert read(tmp_path, "gateway/redis_url") == "redis://:given-redis@redis:6379/0"
    assert read(tmp_path, "grafana/admin_password") == "given-grafana"
    assert f"{KEY_LINE}given by the environment (not printed)" in output
    assert "given-" not in output


def test_a_secret_no_longer_given_falls_back_to_the_generated_one(tmp_path, capsys):
    generated = printed_key(start(tmp_path, capsys))
    start(tmp_path, capsys, GATEWAY_API_KEYS="given-for-a-while")

    output = start(tmp_path, capsys, GATEWAY_API_KEYS="")

    assert read(tmp_path, "gateway/api_keys") == generated
    assert printed_key(output) == generated


@pytest.fixture
def redis_server_with(tmp_path):
    """Start a real redis-server on `<conf>`; yields a function (conf) -> port; stops them all."""
    started = []

    def launch(conf: Path) -> int:
        port = free_port()
        binary = shutil.which("redis-server")
        assert binary, "redis-server not on PATH"
        started.append(
            subprocess.Popen(
                [binary, str(conf), "--port", str(port), "--save", "", "--dir", str(tmp_path)],
                stdout=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=port, socket_timeout=1).ping()
            except redis.AuthenticationError:
                return port
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    yield launch
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def test_a_given_password_with_quotes_backslashes_and_url_characters_works_end_to_end(
    tmp_path, capsys, redis_server_with
):
    """redis-server reads redis.conf's requirepass, and redis-py decodes the URL the gateway gets,
    to the very same password."""
    password = 'p"a\\s s@w:o/r%d'
    start(tmp_path, capsys, REDIS_PASSWORD=password)

    port = redis_server_with(tmp_path / "redis" / "redis.conf")

    url = read(tmp_path, "gateway/redis_url").replace("@redis:6379", f"@127.0.0.1:{port}")
    assert redis.Redis.from_url(url).ping()
    assert redis.Redis(port=port, password=password).ping()
