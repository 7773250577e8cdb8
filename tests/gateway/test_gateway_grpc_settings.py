"""The gateway-grpc binary reads the GATEWAY_* environment as the conformance corpus says (the
Python gateway is held to the same cases by tests/conformance/test_gateway.py)."""

import json

import pytest

from tests.conformance.corpus import CORPUS
from tests.conftest import gateway_grpc_print_config

SETTINGS = json.loads(CORPUS.read_text())["settings"]


@pytest.mark.parametrize("case", SETTINGS, ids=lambda c: c["name"])
def test_the_binary_prints_the_settings_the_corpus_says(case):
    printed = gateway_grpc_print_config(case["env"])
    if "error" in case:
        assert printed.returncode == 2
        assert printed.stderr.startswith(f"error: {case['error']}")
        assert len(printed.stderr.strip().splitlines()) == 1  # one line naming the variable
        return
    assert printed.returncode == 0, printed.stderr
    read = json.loads(printed.stdout)
    assert {name: case["settings"][name] for name in read} == read
