"""Triton over gRPC (`tritonclient.grpc.aio`): model metadata and inference across endpoints.

Long-lived gRPC connections do not balance behind a Kubernetes Service, so the pool resolves
every configured name to its addresses, sends requests round-robin to the healthy ones, and sets
an endpoint aside for a while when it is unreachable, trying the next one instead.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from gateway import metrics, model_config
from gateway.cache_key import canonical_bytes
from gateway.coalescer import Coalescer
from gateway.errors import GatewayError, from_triton, triton_not_ready, unknown_model
from gateway.model_names import canonical_version, check_model_name
from gateway.tensors import Tensor, TensorError, tensor_from_raw

T = TypeVar("T")
UNHEALTHY_FOR_S = 2.0
MAX_ENSEMBLE_DEPTH = 8  # Triton refuses cycles; this bounds a chain of nested ensembles
# Fail fast while Triton is down, reconnect within a second once it is back.
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class TensorInfo:
    """An input or output as Triton's model metadata declares it (KServe v2 protocol,
    required_api.md): a Triton datatype and dimensions, -1 for a variable one; () for a scalar."""

    name: str
    datatype: str
    shape: tuple[int, ...]  # with the batch dimension (-1) when the model batches


@dataclass(frozen=True)
class ModelInfo:
    """What validation and the cache key need to know about a model (see gateway.model_config).

    `fingerprint` is "" where the model, or a step of an ensemble, has none: then its answers are
    not cached, and `unfingerprinted` names the model whose config lacks one. `row_cache`: answers
    are cached per row of the batch (gateway.model_config.row_cache).
    """

    name: str
    version: str
    fingerprint: str
    max_batch_size: int
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    valid_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    allow_empty: frozenset[str] = frozenset()
    max_lengths: dict[str, int] = field(default_factory=dict)
    shared_axes: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    unfingerprinted: str = ""
    row_cache: bool = False
    fetched_at: float = field(default_factory=time.monotonic, compare=False)


@dataclass
class Endpoint:
    """One Triton address: tritonclient for metadata and health, the raw stub for inference."""

    url: str
    client: grpcclient.InferenceServerClient
    channel: grpc.aio.Channel
    stub: service_pb2_grpc.GRPCInferenceServiceStub
    unhealthy_until: float = 0.0

    @classmethod
    def connect(cls, url: str) -> Endpoint:
        """Channels to `url` (`host:port`, an IPv6 address in brackets) with CHANNEL_ARGS. No I/O
        here: gRPC connects on the first call, and reconnects by itself (backoff 0.1 s to 1 s)."""
        client = grpcclient.InferenceServerClient(url, channel_args=CHANNEL_ARGS)
        channel = grpc.aio.insecure_channel(url, options=CHANNEL_ARGS)
        return cls(url, client, channel, service_pb2_grpc.GRPCInferenceServiceStub(channel))

    async def close(self) -> None:
        """Close both channels; calls still in flight on them are cancelled."""
        await self.client.close()
        await self.channel.close()

    @property
    def healthy(self) -> bool:
        """False for UNHEALTHY_FOR_S (2 s) after the endpoint was unreachable (a 503); calls go to
        the healthy endpoints first meanwhile."""
        return time.monotonic() >= self.unhealthy_until


def resolve(targets: list[str]) -> list[str]:
    """Expand each `host:port` to one `ip:port` per address its name resolves to (IPv6 in
    brackets); a name that does not resolve is kept as given. Blocking DNS; duplicates dropped,
    first-seen order kept."""
    urls: list[str] = []
    for target in targets:
        host, _, port = target.rpartition(":")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
            addresses = sorted({info[4][0] for info in infos})
        except socket.gaierror:
            addresses = [host]
        urls += [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]
    return list(dict.fromkeys(urls))


class TritonPool:
    """Triton's gRPC endpoints as one client: `targets` are `host:port` (GATEWAY_TRITON_URL),
    `timeout_ms` the deadline of each metadata, config and inference call (milliseconds; an
    inference past it is a 504), `model_info_ttl_s` how long a ModelInfo is reused (seconds).
    The constructor resolves the names (blocking DNS) but connects nowhere yet."""

    def __init__(self, targets: list[str], timeout_ms: int, model_info_ttl_s: float) -> None:
        self.targets = targets
        self.timeout_s = timeout_ms / 1000
        self.model_info_ttl_s = model_info_ttl_s
        self.endpoints: list[Endpoint] = []
        self._round_robin = itertools.count()
        self._model_info: dict[tuple[str, str], ModelInfo] = {}
        self._info_fetches: Coalescer[ModelInfo] = Coalescer()
        self._adopt(resolve(targets))

    def _adopt(self, urls: list[str]) -> list[Endpoint]:
        """Serve `urls`, keeping the connections of addresses that remain; return the dropped."""
        known = {endpoint.url: endpoint for endpoint in self.endpoints}
        self.endpoints = [known.get(url) or Endpoint.connect(url) for url in urls]
        return [endpoint for url, endpoint in known.items() if url not in urls]

    async def refresh_endpoints(self) -> None:
        """Re-resolve the targets (pods come and go behind a headless Service)."""
        urls = await asyncio.to_thread(resolve, self.targets)
        if urls:
            await asyncio.gather(*(e.close() for e in self._adopt(urls)), return_exceptions=True)

    async def close(self) -> None:
        """Close every endpoint's channels; errors while closing are ignored."""
        await asyncio.gather(*(e.close() for e in self.endpoints), return_exceptions=True)

    async def call(self, method: str, *args, **kwargs):
        """Call a `tritonclient.grpc.aio` method on the next healthy endpoint, with failover.

        Raises GatewayError (errors.from_triton): at once for an error Triton answered, the last
        503 when no endpoint could be reached.
        """
        return await self._on_endpoint(
            lambda endpoint: getattr(endpoint.client, method)(*args, **kwargs)
        )

    async def _on_endpoint(self, attempt: Callable[[Endpoint], Awaitable[T]]) -> T:
        """Run `attempt` on the next healthy endpoint, failing over when one is unreachable."""
        start = next(self._round_robin)
        ordered = [
            self.endpoints[(start + i) % len(self.endpoints)] for i in range(len(self.endpoints))
        ]
        candidates = [e for e in ordered if e.healthy] or ordered
        last_error: GatewayError | None = None
        for endpoint in candidates:
            try:
                return await attempt(endpoint)
            except InferenceServerException as error:
                code, message = str(error.status() or ""), error.message() or str(error)
            except grpc.aio.AioRpcError as error:
                code, message = str(error.code()), error.details() or ""
            metrics.TRITON_ERRORS.labels(code.rsplit(".", 1)[-1] or "UNKNOWN").inc()
            mapped = from_triton(code, message)
            if mapped.status == 404 and not await _server_ready(endpoint, self.timeout_s):
                mapped = triton_not_ready(message)  # shutting down: it unloads every model
            if mapped.reason:
                metrics.QUEUE_REJECTIONS.labels(mapped.reason).inc()
            if mapped.status != 503:
                raise mapped from None
            endpoint.unhealthy_until = time.monotonic() + UNHEALTHY_FOR_S
            last_error = mapped
        assert last_error is not None
        raise last_error

    async def model_info(self, model: str, version: str = "") -> ModelInfo:
        """Metadata, config parameters and fingerprint, reused for `model_info_ttl_s` seconds.

        `version` "": the highest version Triton's metadata lists; else written as Triton answers
        it ("01" -> "1", gateway.model_names). Once the info is older than the TTL, one fetch
        answers every request that asks meanwhile (gateway.coalescer), so an expiry under load
        costs Triton one metadata and one config call per model, not one per request in flight.
        Raises GatewayError (404 for a model Triton does not serve under exactly this name; 400
        for a malformed version); while no endpoint answers (503) or answers in time (504), a
        cached ModelInfo of any age is returned instead, so cached answers keep being served.
        """
        check_model_name(model)
        version = canonical_version(version)
        cached = self._model_info.get((model, version))
        if cached and time.monotonic() - cached.fetched_at < self.model_info_ttl_s:
            return cached
        info, _ = await self._info_fetches.run(
            f"{model}\0{version}", lambda: self._fetch_info(model, version, cached)
        )
        return info

    async def _fetch_info(self, model: str, version: str, cached: ModelInfo | None) -> ModelInfo:
        """Fetch and keep the ModelInfo of `model` (see model_info); `cached`: the expired one."""
        try:
            metadata, config = await asyncio.gather(
                self.call(
                    "get_model_metadata",
                    model,
                    version,
                    as_json=True,
                    client_timeout=self.timeout_s,
                ),
                self._config(model, version),
            )
            fingerprint, unfingerprinted, batches = await self._resolve(model, config, 0)
        except GatewayError as error:
            if cached and error.status in (503, 504):
                return cached  # Triton is down or hung: nothing new is deployed, answers stay valid
            raise
        if metadata.get("name") != model:  # a name Triton resolved to another model
            raise unknown_model(model)
        served_version = version or max(metadata.get("versions", ["1"]), key=int)
        info = ModelInfo(
            name=model,
            version=served_version,
            fingerprint=fingerprint,
            max_batch_size=int(config.get("max_batch_size", 0)),
            inputs={t["name"]: _tensor_info(t) for t in metadata.get("inputs", [])},
            outputs={t["name"]: _tensor_info(t) for t in metadata.get("outputs", [])},
            valid_ranges=model_config.valid_ranges(config),
            allow_empty=model_config.allow_empty(config),
            max_lengths=model_config.max_lengths(config),
            shared_axes=model_config.shared_axes(config),
            unfingerprinted=unfingerprinted,
            row_cache=model_config.row_cache(config, batches),
        )
        self._model_info[(model, version)] = info
        return info

    async def _config(self, model: str, version: str) -> dict:
        response = await self.call(
            "get_model_config", model, version, as_json=True, client_timeout=self.timeout_s
        )
        return response["config"]

    async def _resolve(self, model: str, config: dict, depth: int) -> tuple[str, str, bool]:
        """(cache fingerprint, "", batches) or ("", the model without one, batches): an ensemble's
        fingerprint combines its own with each step's, resolved through their configs
        (gateway.model_config); `batches`: the model, or every step of an ensemble, batches
        dynamically."""
        own = model_config.own_fingerprint(config)
        steps = model_config.ensemble_steps(config)
        if not steps:
            return own, "" if own else model, model_config.batches_dynamically(config)
        if not own or depth >= MAX_ENSEMBLE_DEPTH:
            return "", model, False
        members, batches = [], True
        for name, version in steps:
            member, missing, step_batches = await self._resolve(
                name, await self._config(name, version), depth + 1
            )
            if missing:
                return "", missing, False
            members.append((name, member))
            batches = batches and step_batches
        return model_config.combined_fingerprint(own, members), "", batches

    async def infer(
        self,
        info: ModelInfo,
        inputs: list[Tensor],
        outputs: list[str] | None,
        parameters: dict[str, int] | None = None,
    ) -> dict[str, Tensor]:
        """ModelInfer through the generated stub: raw bytes in and out, no per-tensor wrappers.

        `parameters`: `priority` (uint64) and `timeout` (microseconds, int64), as Triton 2.51's
        gRPC server reads them (src/grpc/infer_handler.cc). Returns the outputs by name, in
        Triton's order. Raises GatewayError: 504 past `timeout_ms`, 429 when Triton's queue
        refuses, 400 when Triton or the model rejects an input, 503 when no endpoint answers,
        502 for another Triton error or an answer whose bytes do not fill its shapes.
        """
        request = service_pb2.ModelInferRequest(model_name=info.name, model_version=info.version)
        for key, value in (parameters or {}).items():
            if key == "priority":
                request.parameters[key].uint64_param = value
            else:
                request.parameters[key].int64_param = value
        for tensor in inputs:
            request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            request.raw_input_contents.append(canonical_bytes(tensor))
        for name in outputs or ():
            request.outputs.add(name=name)
        started = time.perf_counter()
        try:
            response = await self._on_endpoint(
                lambda endpoint: endpoint.stub.ModelInfer(request, timeout=self.timeout_s)
            )
        finally:
            metrics.TRITON_DURATION.labels(info.name).observe(time.perf_counter() - started)
        try:
            return {
                out.name: tensor_from_raw(out.name, out.datatype, list(out.shape), raw, "output")
                for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
            }
        except (TensorError, ValueError) as error:
            raise GatewayError(502, f"malformed response from Triton: {error}") from None

    async def ready(self) -> bool:
        """True when any endpoint's Triton reports ServerReady within 1 s (KServe v2 readiness);
        an endpoint that answers with an error (InferenceServerException) counts as not ready."""
        return any(await asyncio.gather(*(_server_ready(e, 1.0) for e in self.endpoints)))


async def _server_ready(endpoint: Endpoint, timeout_s: float) -> bool:
    """Triton's ServerReady on `endpoint`; False when it says so, fails or does not answer within
    `timeout_s` (tritonclient raises InferenceServerException for each; Triton 2.51 answers
    UNAVAILABLE "Server exiting" during its graceful shutdown)."""
    try:
        return await endpoint.client.is_server_ready(client_timeout=timeout_s)
    except InferenceServerException:
        return False


def _tensor_info(tensor: dict) -> TensorInfo:
    # protobuf's JSON leaves an empty shape (a scalar) out
    return TensorInfo(
        tensor["name"], tensor["datatype"], tuple(int(d) for d in tensor.get("shape", ()))
    )


__all__ = ["GatewayError", "ModelInfo", "TensorInfo", "TritonPool"]
