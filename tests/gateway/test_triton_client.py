"""The Triton endpoint pool follows DNS without dropping live connections, fetches a model's info
once for all the requests that find it expired, and keeps the last known info while Triton is
down, hung or shutting down (never for a model a ready Triton no longer serves)."""

import asyncio

import pytest
from tritonclient.utils import InferenceServerException

from gateway.errors import GatewayError
from gateway.triton_client import TritonPool

METADATA = {
    "name": "digits",
    "versions": ["1"],
    "inputs": [{"name": "image", "datatype": "FP32", "shape": ["-1", "64"]}],
    "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": ["-1", "10"]}],
}
CONFIG = {"config": {"name": "digits", "max_batch_size": 8}}


class CountingTriton:
    """Stands in for TritonPool.call: counts each method and answers after yielding once, so
    callers that arrive together overlap as they would under load."""

    def __init__(self, error: GatewayError | None = None) -> None:
        self.calls: dict[str, int] = {}
        self.error = error

    async def __call__(self, method: str, *args, **kwargs) -> dict:
        self.calls[method] = self.calls.get(method, 0) + 1
        await asyncio.sleep(0)
        if self.error:
            raise self.error
        return METADATA if method == "get_model_metadata" else CONFIG


async def test_re_resolving_keeps_live_connections_and_closes_dropped_ones():
    pool = TritonPool(["127.0.0.1:1", "127.0.0.1:2"], 1000, 1.0)
    kept = pool.endpoints[0]
    pool.targets = ["127.0.0.1:1", "127.0.0.1:3"]
    await pool.refresh_endpoints()
    assert [e.url for e in pool.endpoints] == ["127.0.0.1:1", "127.0.0.1:3"]
    assert pool.endpoints[0] is kept
    await pool.close()


async def test_requests_that_find_the_info_expired_together_share_one_fetch():
    pool = TritonPool(["127.0.0.1:1"], 1000, 0.0)  # every request finds it expired
    pool.call = triton = CountingTriton()
    infos = await asyncio.gather(*(pool.model_info("digits") for _ in range(32)))
    assert triton.calls == {"get_model_metadata": 1, "get_model_config": 1}
    assert {info.max_batch_size for info in infos} == {8}
    await pool.model_info("digits")  # the fetch is over: an expired info is fetched again
    assert triton.calls == {"get_model_metadata": 2, "get_model_config": 2}
    await pool.close()


async def test_a_failed_fetch_fails_every_request_that_shared_it():
    pool = TritonPool(["127.0.0.1:1"], 1000, 0.0)
    pool.call = triton = CountingTriton(GatewayError(404, "unknown model"))
    answers = await asyncio.gather(
        *(pool.model_info("digits") for _ in range(4)), return_exceptions=True
    )
    assert [getattr(a, "status", None) for a in answers] == [404] * 4
    assert triton.calls["get_model_metadata"] == 1
    with pytest.raises(GatewayError):
        await pool.model_info("digits")  # nothing is kept from a failure: asked again
    assert triton.calls["get_model_metadata"] == 2
    await pool.close()


@pytest.mark.parametrize("status", [503, 504])
async def test_an_expired_info_stays_in_use_while_triton_is_down_or_hung(status):
    pool = TritonPool(["127.0.0.1:1"], 1000, 0.0)
    pool.call = triton = CountingTriton()
    known = await pool.model_info("digits")
    triton.error = GatewayError(status, "Triton does not answer")

    assert await pool.model_info("digits") is known  # cached answers keep being served
    await pool.close()


async def test_an_unknown_model_is_not_answered_from_an_expired_info():
    pool = TritonPool(["127.0.0.1:1"], 1000, 0.0)
    pool.call = triton = CountingTriton()
    await pool.model_info("digits")
    triton.error = GatewayError(404, "unknown model")  # unloaded: its answers must stop

    with pytest.raises(GatewayError):
        await pool.model_info("digits")
    await pool.close()


class ShuttingDownTriton:
    """Stands in for one endpoint's tritonclient: serves digits until `exiting`, then answers as
    Triton 2.51 does during its graceful shutdown (measured): NOT_FOUND "has no available
    versions" for the model, ServerReady UNAVAILABLE "Server exiting"; `ready_after_unload`
    instead keeps ServerReady true (a model unloaded on purpose)."""

    def __init__(self) -> None:
        self.exiting = False
        self.ready_after_unload = False

    def _gone(self) -> InferenceServerException:
        message = "Request for unknown model: 'digits' has no available versions"
        return InferenceServerException(message, status="StatusCode.NOT_FOUND")

    async def get_model_metadata(self, *args, **kwargs) -> dict:
        if self.exiting:
            raise self._gone()
        return METADATA

    async def get_model_config(self, *args, **kwargs) -> dict:
        if self.exiting:
            raise self._gone()
        return CONFIG

    async def is_server_ready(self, *args, **kwargs) -> bool:
        if self.exiting and not self.ready_after_unload:
            raise InferenceServerException("Server exiting", status="StatusCode.UNAVAILABLE")
        return True


def shutting_down_pool() -> tuple[TritonPool, ShuttingDownTriton]:
    pool = TritonPool(["127.0.0.1:1"], 1000, 0.0)
    pool.endpoints[0].client = triton = ShuttingDownTriton()
    return pool, triton


async def test_while_triton_shuts_down_the_known_info_stays_in_use():
    pool, triton = shutting_down_pool()
    known = await pool.model_info("digits")
    triton.exiting = True

    assert await pool.model_info("digits") is known  # cached answers keep being served
    await pool.close()


async def test_a_model_triton_cannot_find_while_shutting_down_is_a_503_to_retry():
    pool, triton = shutting_down_pool()
    triton.exiting = True

    with pytest.raises(GatewayError) as raised:
        await pool.model_info("digits")

    assert (raised.value.status, raised.value.retry_after_s) == (503, 1)
    assert raised.value.message.startswith("inference server unavailable: Triton is not ready")
    await pool.close()


async def test_a_model_unloaded_from_a_ready_triton_stays_a_404():
    pool, triton = shutting_down_pool()
    await pool.model_info("digits")
    triton.exiting = triton.ready_after_unload = True

    with pytest.raises(GatewayError) as raised:
        await pool.model_info("digits")

    assert raised.value.status == 404
    await pool.close()
