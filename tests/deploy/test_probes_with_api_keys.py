"""API keys are on in every deployment (compose and k8s), while Prometheus scrapes /metrics and the
kubelet / Docker probe /healthz and /readyz without a key: a gateway started with
GATEWAY_API_KEYS must still answer those, and refuse /predict without a key. The same for its gRPC
front end, gateway-grpc: probes and /metrics on its metrics port need no key, ModelInfer does."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

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


@pytest.mark.integration
def test_gateway_grpc_probes_and_metrics_need_no_key(keyed_stack):
    metrics_url = keyed_stack.local.urls["gateway gRPC metrics"]
    base = metrics_url.removesuffix("/metrics")
    assert base.endswith(f":{keyed_stack.ports.gateway_grpc_metrics}")
    for path in ("/healthz", "/readyz", "/metrics"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    # labelled series appear with the first request; the plain gauge is there from the start
    assert "gateway_in_flight_requests" in httpx.get(metrics_url, timeout=10).text


@pytest.mark.integration
def test_grpc_infer_needs_the_key(keyed_stack):
    image = np.full((1, 1, 8, 8), 0.5, dtype=np.float32)
    tensor = grpcclient.InferInput("image", list(image.shape), "FP32")
    tensor.set_data_from_numpy(image)
    client = grpcclient.InferenceServerClient(keyed_stack.gateway_grpc_url)
    try:
        for headers in (None, {"x-api-key": "wrong"}):
            with pytest.raises(InferenceServerException) as refused:
                client.infer("digits", [tensor], headers=headers)
            assert "UNAUTHENTICATED" in str(refused.value.status()), refused.value
        result = client.infer("digits", [tensor], headers={"x-api-key": KEY})
        assert result.as_numpy("logits").shape == (1, 10)
    finally:
        client.close()
