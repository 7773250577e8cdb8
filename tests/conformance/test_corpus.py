"""corpus.json is what tests/conformance/cases.py says, and says it consistently."""

import json

from tests.conformance import cases
from tests.conformance.corpus import CORPUS, corpus, render

DOCUMENT = json.loads(CORPUS.read_text())


def test_the_committed_corpus_is_what_the_cases_write():
    """Edit cases.py, then run `python -m tests.conformance.corpus`: Go reads the file."""
    written = render(corpus(cases.MODELS, cases.CASES, cases.settings_cases()))
    assert CORPUS.read_text() == written, "corpus.json is stale: python -m tests.conformance.corpus"


def test_every_case_has_a_unique_name_and_every_request_an_expectation_per_front_end():
    names = [case["name"] for case in DOCUMENT["requests"]]
    assert len(names) == len(set(names))
    for case in DOCUMENT["requests"]:
        assert case["requests"], case["name"]
        for request in case["requests"]:
            assert ("status" in request["expect"]) == ("path" in request), case["name"]


def test_an_answer_is_stored_only_with_its_value_and_never_after_a_refusal():
    for case in DOCUMENT["requests"]:
        assert (case["key"] is None) == (case["value"] is None), case["name"]
        refused = any(r["expect"].get("status", 200) != 200 for r in case["requests"])
        assert not (refused and case["key"]), case["name"]


def test_both_front_ends_are_held_to_every_rule_the_other_has():
    """Each rule (a case) names HTTP forms, gRPC forms or both; most name both."""
    both = [
        case
        for case in DOCUMENT["requests"]
        if {"path" in r for r in case["requests"]} == {True, False}
    ]
    assert len(both) >= len(DOCUMENT["requests"]) * 2 // 3
