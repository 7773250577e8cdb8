"""The Triton endpoint pool follows DNS without dropping live connections."""

from gateway.triton_client import TritonPool


async def test_re_resolving_keeps_live_connections_and_closes_dropped_ones():
    pool = TritonPool(["127.0.0.1:1", "127.0.0.1:2"], 1000, 1.0)
    kept = pool.endpoints[0]
    pool.targets = ["127.0.0.1:1", "127.0.0.1:3"]
    await pool.refresh_endpoints()
    assert [e.url for e in pool.endpoints] == ["127.0.0.1:1", "127.0.0.1:3"]
    assert pool.endpoints[0] is kept
    await pool.close()
