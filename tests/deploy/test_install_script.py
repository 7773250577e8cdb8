"""scripts/install-deploy-tools.sh: shellcheck-clean, and idempotent (a run with everything present
installs nothing and says so)."""

from __future__ import annotations

import shutil

from .conftest import ROOT, explain, find_tool, run

SCRIPT = ROOT / "scripts" / "install-deploy-tools.sh"


def test_shellcheck_clean():
    proc = run([find_tool("shellcheck"), "--severity=style", str(SCRIPT)])
    assert proc.returncode == 0, explain(proc)


def test_idempotent_when_tools_present():
    for tool in ("prometheus", "promtool", "prometheus-redis-exporter"):
        assert shutil.which(tool), f"{tool} missing: run {SCRIPT}"
    proc = run(["bash", str(SCRIPT)], timeout=60)
    assert proc.returncode == 0, explain(proc)
    assert "already installed" in proc.stdout and "installing" not in proc.stdout, explain(proc)
