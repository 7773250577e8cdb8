"""Reads Prometheus text exposition into {(name, labels): value} for assertions."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`.

    The parser names counter samples `<name>_total`, whether or not the exposition did.
    """
    names = {name, f"{name}_total"}
    wanted = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n in names and wanted <= l)
