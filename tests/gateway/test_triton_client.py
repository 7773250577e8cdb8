"""The Triton endpoint pool follows DNS without dropping live connections, fetches a model's info
once for all the requests that find it expired, and keeps the last known info while Triton is
down or hung (never for a model Triton no longer serves)."""

import asyncio

import pytest

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
