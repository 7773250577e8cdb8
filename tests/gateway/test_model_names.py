"""Model names and versions as Triton resolves them (gateway/model_names.py; the Go twin's table
test is gateway-grpc/model_names_test.go)."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.model_names import canonical_version, check_model_name


@pytest.mark.parametrize(
    ("given", "answered"), [("", ""), ("1", "1"), ("01", "1"), ("00007", "7"), ("0", "0")]
)
def test_a_version_of_decimal_digits_is_written_as_its_number(given, answered):
    assert canonical_version(given) == answered


@pytest.mark.parametrize("given", ["+1", " 1", "1 ", "1x", "-1", "0x1", "\u0663", "9" * 20])
def test_a_version_that_is_not_decimal_digits_within_int64_is_a_400(given):
    with pytest.raises(GatewayError) as raised:
        canonical_version(given)
    assert raised.value.status == 400
    assert f"invalid model version specified '{given}'" in raised.value.message


def test_a_name_with_a_nul_is_tritons_404_and_a_plain_name_passes():
    check_model_name("digits")
    with pytest.raises(GatewayError) as raised:
        check_model_name("digits\0x")
    assert (raised.value.status, raised.value.message) == (
        404,
        "Request for unknown model: 'digits\0x' is not found",
    )
