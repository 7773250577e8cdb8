"""The install scripts: shellcheck-clean; scripts/install-deploy-tools.sh idempotent (a run with
everything present installs nothing and says so). scripts/install-podman.sh runs in every
`make compose-test`, which needs what it installs."""

from __future__ import annotations

import shutil

import pytest

from .conftest import ROOT, explain, find_tool, run

SCRIPT = ROOT / "scripts" / "install-deploy-tools.sh"
SHELL_SCRIPTS = [SCRIPT, ROOT / "scripts" / "install-podman.sh"]


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script):
    proc = run([find_tool("shellcheck"), "--severity=style", str(script)])
    assert proc.returncode == 0, explain(proc)


def test_idempotent_when_tools_present():
    for tool in ("prometheus", "promtool", "prometheus-redis-exporter"):
        assert shutil.which(tool), f"{tool} missing: run {SCRIPT}"
    proc = run(["bash", str(SCRIPT)], timeout=60)
    assert proc.returncode == 0, explain(proc)
    assert "already installed" in proc.stdout and "installing" not in proc.stdout, explain(proc)
