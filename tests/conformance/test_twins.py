"""Each Go file of gateway-grpc has its Python twin in gateway/ (same name, `main.go` ->
`__main__.py`), so the other half of a rule is where its name says."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_gateway_grpc_go_file_has_a_python_twin():
    go_files = sorted(
        p for p in (ROOT / "gateway-grpc").glob("*.go") if not p.stem.endswith("_test")
    )
    twins = {
        p.name: ROOT / "gateway" / ("__main__.py" if p.stem == "main" else f"{p.stem}.py")
        for p in go_files
    }
    assert [name for name, twin in twins.items() if not twin.exists()] == []
    assert len(twins) >= 15


def test_every_go_test_file_tests_a_go_file_or_the_corpus():
    for test in (ROOT / "gateway-grpc").glob("*_test.go"):
        subject = test.name.removesuffix("_test.go")
        assert subject == "corpus" or (test.parent / f"{subject}.go").exists(), test.name
