"""Reads a Prometheus text endpoint into {(name, labels): value}, for benchmarks and tests."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str, timeout_s: float = 10.0) -> Samples:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`.

    The parser names counter samples `<name>_total`, whether or not the exposition did.
    """
    names = {name, f"{name}_total"}
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n in names and wanted <= found)
