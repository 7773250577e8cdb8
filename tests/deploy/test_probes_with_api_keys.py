"""API keys are on in every deployment (compose and k8s), while Prometheus scrapes /metrics and the
kubelet / Docker probe /healthz and /readyz without a key: a gateway started with
GATEWAY_API_KEYS must still answer those, and refuse /predict without a key."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import start_stack

KEY = "deploy-test-key"


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory, model_repository):
    running = start_stack(
        tmp_path_factory.mktemp("keyed-stack"), model_repository, GATEWAY_API_KEYS=KEY
    )
    yield running
    running.local.stop()


@pytest.mark.integration
def test_probes_and_metrics_need_no_key(keyed_stack):
    for path in ("/healthz", "/readyz", "/metrics"):
        r = httpx.get(keyed_stack.gateway_url + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert "gateway_requests_total" in httpx.get(keyed_stack.gateway_metrics_url, timeout=10).text


@pytest.mark.integration
def test_predict_needs_the_key(keyed_stack):
    payload = {"model": "digits", "inputs": {"image": [[[[0.5] * 8] * 8]]}}
    assert keyed_stack.predict(payload).status_code == 401
    assert keyed_stack.predict(payload, headers={"X-API-Key": "wrong"}).status_code == 401
    assert keyed_stack.predict(payload, headers={"X-API-Key": KEY}).status_code == 200
