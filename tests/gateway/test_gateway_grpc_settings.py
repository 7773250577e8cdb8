"""gateway-grpc reads the gateway's GATEWAY_* settings the way the Python gateway does."""

import json
import os

import pytest

from gateway.settings import Settings
from tests.conftest import gateway_grpc_print_config

SET = {
    "GATEWAY_TRITON_URL": "triton-a:8001, triton-b:8001",
    "GATEWAY_CACHE_MODEL_TTL_S": '{"digits": 60, "minilm": 0}',
    "GATEWAY_CACHE_ENABLED": "off",
    "GATEWAY_API_KEYS": "k1,k2",
    "GATEWAY_REDIS_RETRY_AFTER_S": "0.25",
    "GATEWAY_MAX_IN_FLIGHT": "32",
}


def settings_of_both(monkeypatch, values: dict[str, str]) -> tuple[dict, dict]:
    printed = gateway_grpc_print_config(values)
    assert printed.returncode == 0, printed.stderr
    for name in [k for k in os.environ if k.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return json.loads(printed.stdout), Settings().model_dump()


@pytest.mark.parametrize("values", [{}, SET], ids=["defaults", "set"])
def test_every_setting_gateway_grpc_reads_has_the_python_gateways_name_and_value(
    monkeypatch, values
):
    native, python = settings_of_both(monkeypatch, values)
    assert {name: python[name] for name in native} == native


def test_a_malformed_setting_stops_gateway_grpc_with_one_line_naming_it():
    done = gateway_grpc_print_config({"GATEWAY_MAX_IN_FLIGHT": "many"})
    assert done.returncode == 2
    assert done.stderr.startswith('error: GATEWAY_MAX_IN_FLIGHT="many"')
    assert len(done.stderr.strip().splitlines()) == 1
