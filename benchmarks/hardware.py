"""Cost per 1,000 inferences: an editable price table (YAML) times throughput at the latency SLO.

Results come from this machine's run and from JSON files measured elsewhere (the GPU script's
`hardware.json`, or another host's bench). Entries of the price table without a measurement are
listed as such: no throughput is ever invented for them.

Import format (schema "bench-hardware/1"):
  {"schema": "bench-hardware/1",
   "hardware": {"id": "NVIDIA H100 80GB HBM3" | "cpu:2", "kind": "gpu"|"cpu", "description": "..."},
   "slo_p99_ms": 100,
   "results": [{"model": "minilm", "variant": "fp16", "path": "model only, torch CUDA",
                "throughput": 12345.0, "p99_ms": 8.1, "note": "..."}]}
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import yaml

SCHEMA = "bench-hardware/1"
DEFAULT_PRICES = Path(__file__).parent / "prices.yaml"
RESULTS_DIR = (
    Path(__file__).resolve().parents[1] / "docs" / "results"
)  # committed results, other machines too


def load_prices(path: Path = DEFAULT_PRICES) -> dict:
    table = yaml.safe_load(Path(path).read_text())
    for entry in table["instances"]:
        for key in ("key", "name", "usd_per_hour", "match"):
            if key not in entry:
                raise ValueError(f"{path}: instance {entry} lacks '{key}'")
    return table


def price_for(hardware_id: str, prices: dict) -> dict | None:
    lowered = hardware_id.lower()
    for entry in prices["instances"]:
        if any(m.lower() in lowered for m in entry["match"]):
            return entry
    return None


def local_hardware() -> dict:
    cores = os.cpu_count() or 1
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "id": f"cpu:{cores}",
        "kind": "cpu",
        "description": f"{model}, {cores} logical cores",
        "measured_here": True,
    }


def load_imports(paths: list[Path]) -> list[dict]:
    """Every readable bench-hardware/1 document among `paths` (files or folders of *.json)."""
    documents = []
    for path in paths:
        files = sorted(Path(path).glob("*.json")) if Path(path).is_dir() else [Path(path)]
        for file in files:
            try:
                document = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(document, dict) and document.get("schema") == SCHEMA:
                document = {**document, "source": str(file)}
                documents.append(document)
    return documents


def cost_per_1k(usd_per_hour: float, throughput: float) -> float | None:
    if not throughput or throughput <= 0:
        return None
    return usd_per_hour / (throughput * 3600.0) * 1000.0


def rank(documents: list[dict], prices: dict) -> dict:
    """Ranked rows (cheapest first per model) and the unmeasured price-table entries."""
    rows, measured_keys = [], set()
    for document in documents:
        hardware = document["hardware"]
        entry = price_for(hardware["id"], prices)
        for result in document.get("results", []):
            slo = result.get("slo_p99_ms", document.get("slo_p99_ms"))
            p99 = result.get("p99_ms")
            within = p99 is None or slo is None or p99 <= slo
            row = {
                "hardware": hardware.get("description") or hardware["id"],
                "hardware_id": hardware["id"],
                "price_key": entry["key"] if entry else None,
                "instance": entry["name"] if entry else "no price in table",
                "usd_per_hour": entry["usd_per_hour"] if entry else None,
                "model": result["model"],
                "variant": result.get("variant", ""),
                "path": result.get("path", ""),
                "throughput": result.get("throughput"),
                "p99_ms": p99,
                "slo_p99_ms": slo,
                "within_slo": within,
                "source": "measured here"
                if hardware.get("measured_here")
                else document.get("source", "imported"),
                "note": result.get("note", ""),
            }
            row["usd_per_1k"] = (
                cost_per_1k(entry["usd_per_hour"], row["throughput"]) if entry and within else None
            )
            if entry and within:
                measured_keys.add(entry["key"])
            rows.append(row)
    rows.sort(key=lambda r: (r["model"], r["usd_per_1k"] is None, r["usd_per_1k"] or 0))
    unmeasured = [e for e in prices["instances"] if e["key"] not in measured_keys]
    return {"currency": prices.get("currency", "USD"), "rows": rows, "unmeasured": unmeasured}


def document(hardware: dict, slo_p99_ms: float, results: list[dict]) -> dict:
    return {"schema": SCHEMA, "hardware": hardware, "slo_p99_ms": slo_p99_ms, "results": results}
