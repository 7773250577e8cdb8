"""The search's logic on fakes: a 'model' is the set of nodes kept in FP32."""

from pathlib import Path

from conversion import int8_search
from conversion.gate import Verdict

NODES = ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6"]
SENSITIVE = {"conv2": 0.5, "conv5": 0.3, "conv1": 0.01}  # harm each node does in INT8


class FakeModels:
    """Builds 'models' as files naming the nodes kept FP32; error = harm of the others."""

    def __init__(self, tmp_path: Path, needed: float = 0.05) -> None:
        self.tmp_path = tmp_path
        self.needed = needed
        self.built = 0

    def build(self, keep: tuple[str, ...]) -> Path:
        self.built += 1
        path = self.tmp_path / f"m{self.built}.txt"
        path.write_text(",".join(keep))
        return path

    def harm(self, path: Path) -> float:
        keep = set(path.read_text().split(","))
        return sum(h for n, h in SENSITIVE.items() if n not in keep)

    def judge(self, path: Path) -> Verdict:
        reasons = [] if self.harm(path) <= self.needed else ["y: too far"]
        return Verdict("int8_static", "fp32", {}, reasons)


def test_the_smallest_set_of_sensitive_nodes_is_kept_in_fp32(tmp_path):
    fake = FakeModels(tmp_path)
    result = int8_search.search("int8_static", NODES, fake.build, fake.harm, fake.judge, 60)
    assert result.kept_fp32 == ("conv2", "conv5")
    assert result.path is not None and result.verdict.passed and not result.exhausted
    assert result.path.read_text() == "conv2,conv5"
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]  # the tried ones are gone


def test_the_sensitivity_ranks_the_node_that_harms_most_alone_first(tmp_path):
    fake = FakeModels(tmp_path)
    result = int8_search.search("int8_static", NODES, fake.build, fake.harm, fake.judge, 60)
    ranked = sorted(result.sensitivity, key=lambda n: -result.sensitivity[n])
    assert ranked[:3] == ["conv2", "conv5", "conv1"]
    assert result.as_dict()["most_sensitive"][0]["node"] == "conv2"


def test_when_even_all_nodes_in_fp32_fail_nothing_is_found(tmp_path):
    fake = FakeModels(tmp_path, needed=-1.0)
    result = int8_search.search("int8_static", NODES, fake.build, fake.harm, fake.judge, 60)
    assert result.path is None and result.kept_fp32 == () and not result.exhausted


def test_a_spent_budget_stops_the_search_and_says_so(tmp_path):
    fake = FakeModels(tmp_path)
    result = int8_search.search("int8_static", NODES, fake.build, fake.harm, fake.judge, 0)
    assert result.exhausted and result.path is None and result.trials == 0


def test_a_model_without_quantizable_nodes_has_nothing_to_search(tmp_path):
    fake = FakeModels(tmp_path)
    result = int8_search.search("int8_static", [], fake.build, fake.harm, fake.judge, 60)
    assert result.path is None and not result.exhausted
