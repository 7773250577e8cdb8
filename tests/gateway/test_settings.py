"""Settings come from GATEWAY_* variables; lists are comma-separated. The variables both
gateways read, and their ranges, are pinned by the conformance corpus (tests/conformance); the
ones only this gateway reads are here."""

import pytest
from pydantic import ValidationError

from gateway.settings import Settings


def test_comma_separated_lists_and_per_model_ttl(monkeypatch):
    monkeypatch.setenv("GATEWAY_TRITON_URL", "a:8001, b:8001")
    monkeypatch.setenv("GATEWAY_API_KEYS", "k1,k2")
    monkeypatch.setenv("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": 5, "minilm": 0}')
    settings = Settings()
    assert settings.triton_url == ["a:8001", "b:8001"]
    assert settings.api_keys == ["k1", "k2"]
    assert (settings.ttl_for("digits"), settings.ttl_for("minilm"), settings.ttl_for("other")) == (
        5,
        0,
        3600,
    )


def test_the_master_switch_disables_every_model(monkeypatch):
    monkeypatch.setenv("GATEWAY_CACHE_ENABLED", "false")
    assert Settings().ttl_for("digits") == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_PORT", "0"),
        ("GATEWAY_PORT", "65536"),
        ("GATEWAY_WORKERS", "0"),
        ("GATEWAY_WORKERS", "100000"),  # each a process: it would fork until memory runs out
        ("GATEWAY_CPUS", "0,-1"),
    ],
)
def test_a_value_out_of_its_range_is_refused_by_name(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=variable):
        Settings()
