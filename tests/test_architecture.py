"""The import rules of docs/architecture.md, read from the source: which part may use which.

The gateway is the serving path and its image installs only the gateway's dependencies, so it never
imports the conversion (torch, ONNX), the local stack or the benchmarks. The conversion is an
offline tool that knows nothing of serving. The local stack reads the repository format the
conversion writes. Load tests run in their own image with Locust and tritonclient[grpc] only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("gateway", "conversion", "localstack", "benchmarks", "loadtests", "tests")

# part -> the project parts (package or package.module) it may import, itself always included
ALLOWED = {
    "gateway": set(),
    "conversion": set(),
    # conversion.openvino_parameters: copied beside the twin (like fingerprint.py), so the twin
    # maps a config's OpenVINO parameters exactly as the gate does
    "localstack": {
        "conversion.triton_config",
        "conversion.repository",
        "conversion.fingerprint",
        "conversion.openvino_parameters",
    },
    "benchmarks": {"gateway", "conversion", "localstack"},
    "loadtests": set(),
}
# third-party top-level modules the gateway may import: its own dependencies in pyproject.toml
GATEWAY_THIRD_PARTY = {
    "numpy", "fastapi", "starlette", "uvicorn", "orjson", "redis", "pydantic", "pydantic_settings",
    "prometheus_client", "tritonclient", "grpc", "google", "typer", "rich",
}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by one file (relative imports resolve to its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` is a.b.c (a module or a name of a.b: a rule for a.b covers both)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def project_imports(part: str) -> dict[Path, set[str]]:
    """Each file of `part` -> the other project parts' modules it imports."""
    result = {}
    for path in sorted((ROOT / part).rglob("*.py")):
        names = {
            name
            for name in imports_of(path)
            if name.split(".")[0] in PROJECT and name.split(".")[0] != part
        }
        result[path.relative_to(ROOT)] = names
    return result


def allowed(name: str, rules: set[str]) -> bool:
    return any(name == rule or name.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_the_architecture_allows(part):
    offending = {
        str(path): sorted(n for n in names if not allowed(n, ALLOWED[part]))
        for path, names in project_imports(part).items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_gateway_imports_no_third_party_module_beyond_its_own_dependencies():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    found = {
        str(path.relative_to(ROOT)): sorted(
            top
            for top in {name.split(".")[0] for name in imports_of(path)}
            if top not in stdlib and top not in GATEWAY_THIRD_PARTY and top != "gateway"
        )
        for path in sorted((ROOT / "gateway").rglob("*.py"))
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_the_rules_see_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from conversion.pipeline import convert\nimport localstack.stack\n")
    assert {"conversion.pipeline.convert", "localstack.stack"} <= imports_of(sample)
    assert not allowed("conversion.pipeline.convert", ALLOWED["gateway"])
    assert allowed("conversion.triton_config", ALLOWED["localstack"])
