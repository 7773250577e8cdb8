"""Locust scenarios for the gateway: repeat-heavy (Zipf over a small set: the cache), unique
(every request a cache miss: Triton's dynamic batching) and a mix, over HTTP /predict and over
KServe v2 gRPC through the gateway.

Self-contained on purpose: no project code. The compose `loadtest` profile runs it in the loadtest
image (docker/loadtest.Dockerfile), `make loadtest` from .venv-loadtest, both with
loadtests/requirements.txt; gRPC users need `tritonclient[grpc]` (and numpy); without it they are skipped.

Environment (all optional):
  LOCUST_MODEL          model for the scenarios (default digits; minilm_text etc. for text)
  LOCUST_GRPC_HOST      gateway gRPC address (default: --host's name, port 8081)
  LOCUST_API_KEY        sent as X-API-Key (HTTP) / x-api-key metadata (gRPC)
  LOCUST_API_KEY_FILE   else the first key in this file (comma-separated; compose: written by `init`)
  LOCUST_ZIPF_SIZE      distinct inputs of the repeat scenario (default 64), LOCUST_ZIPF_S (1.1)
  LOCUST_MIX_REPEAT     share of repeat requests in the mix (default 0.7)
  LOCUST_SLO_P99_MS     p99 objective over all requests (default 250)
  LOCUST_SLO_ERROR_RATE error-rate objective (default 0.01)
  LOCUST_SUMMARY_JSON   where to write the SLO verdict and per-endpoint stats (default: none)
The process exits 1 when an objective is broken (environment.process_exit_code).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import time
import uuid
from urllib.parse import urlparse

from locust import FastHttpUser, User, constant, events, task

try:  # gRPC under gevent needs grpc's gevent integration before any channel is created
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()
    import numpy as np
    import tritonclient.grpc as grpcclient
except ImportError:  # without tritonclient[grpc]: HTTP scenarios only
    grpcclient = None


def _api_key() -> str:
    """LOCUST_API_KEY, else the first of the comma-separated keys in LOCUST_API_KEY_FILE, else ""."""
    key = os.environ.get("LOCUST_API_KEY", "")
    path = os.environ.get("LOCUST_API_KEY_FILE", "")
    if key or not path:
        return key
    with open(path, encoding="utf-8") as keys:
        return keys.read().strip().split(",")[0].strip()


MODEL = os.environ.get("LOCUST_MODEL", "digits")
API_KEY = _api_key()
ZIPF_SIZE = int(os.environ.get("LOCUST_ZIPF_SIZE", "64"))
ZIPF_S = float(os.environ.get("LOCUST_ZIPF_S", "1.1"))
MIX_REPEAT = float(os.environ.get("LOCUST_MIX_REPEAT", "0.7"))
SLO_P99_MS = float(os.environ.get("LOCUST_SLO_P99_MS", "250"))
SLO_ERROR_RATE = float(os.environ.get("LOCUST_SLO_ERROR_RATE", "0.01"))
SUMMARY_JSON = os.environ.get("LOCUST_SUMMARY_JSON", "")
TEXT_MODEL = "text" in MODEL or MODEL.startswith("minilm")

WORDS = [
    "the",
    "a",
    "one",
    "every",
    "quiet",
    "bright",
    "old",
    "new",
    "small",
    "red",
    "green",
    "blue",
    "fast",
    "slow",
    "calm",
    "cat",
    "dog",
    "bird",
    "river",
    "city",
    "train",
    "ship",
    "book",
    "song",
    "garden",
    "market",
    "teacher",
    "child",
    "runs",
    "reads",
    "writes",
    "sings",
    "builds",
    "finds",
    "opens",
    "follows",
    "today",
    "slowly",
    "quickly",
    "near",
    "under",
    "over",
    "after",
]
RUN = uuid.uuid4().int & 0xFFFFFFFF  # unique inputs differ between runs too: no stale hits
_counter = itertools.count()


def make_input(n: int):
    """Input number n: an 8x8 image in [0, 1] ([1,1,8,8]) or a short sentence ([1,1])."""
    rng = random.Random(n)
    if TEXT_MODEL:
        words = rng.choices(WORDS, k=rng.randint(5, 8))
        return {"text": [[" ".join(words) + f" number {n}"]]}
    return {"image": [[[[round(rng.random(), 4) for _ in range(8)] for _ in range(8)]]]}


class Zipf:
    def __init__(self, size: int, s: float) -> None:
        weights = [1.0 / (k + 1) ** s for k in range(size)]
        total = sum(weights)
        self.cdf = list(itertools.accumulate(w / total for w in weights))

    def __call__(self) -> int:
        return min(bisect.bisect_right(self.cdf, random.random()), len(self.cdf) - 1)


ZIPF = Zipf(ZIPF_SIZE, ZIPF_S)
HOT = [make_input(n) for n in range(ZIPF_SIZE)]


def repeat_input():
    return HOT[ZIPF()]


def unique_input():
    return make_input((RUN << 32) | next(_counter))


def mixed_input():
    return repeat_input() if random.random() < MIX_REPEAT else unique_input()


# ------------------------------------------------------------------ HTTP /predict
class _PredictHttp(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    scenario = "unique"

    def pick(self):
        raise NotImplementedError

    @task
    def predict(self) -> None:
        headers = {"X-API-Key": API_KEY} if API_KEY else {}
        payload = {"model": MODEL, "inputs": self.pick()}
        name = f"http {self.scenario}"
        with self.client.post(
            "/predict", json=payload, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:120]}")
            else:
                response.success()


class RepeatHttpUser(_PredictHttp):
    """Zipf over a small set of inputs: after warm-up almost every answer is a cache hit."""

    scenario = "repeat"

    def pick(self):
        return repeat_input()


class UniqueHttpUser(_PredictHttp):
    """Never the same input twice: every request reaches Triton and its dynamic batcher."""

    scenario = "unique"

    def pick(self):
        return unique_input()


class MixedHttpUser(_PredictHttp):
    """LOCUST_MIX_REPEAT of the traffic repeats, the rest is new."""

    scenario = "mixed"

    def pick(self):
        return mixed_input()


# ------------------------------------------------------------------ KServe v2 gRPC
class _PredictGrpc(User):
    abstract = True
    wait_time = constant(0)
    scenario = "unique"

    def __init__(self, environment) -> None:
        super().__init__(environment)
        if grpcclient is None:
            raise RuntimeError(
                "gRPC users need tritonclient[grpc] (pip install tritonclient[grpc])"
            )
        target = (
            os.environ.get("LOCUST_GRPC_HOST")
            or f"{urlparse(self.host or '').hostname or '127.0.0.1'}:8081"
        )
        self.grpc = grpcclient.InferenceServerClient(target)
        self.target = target
        self.headers = {"x-api-key": API_KEY} if API_KEY else None

    def pick(self):
        raise NotImplementedError

    def on_stop(self) -> None:
        self.grpc.close()

    @task
    def predict(self) -> None:
        values = self.pick()
        if TEXT_MODEL:
            array = np.array(values["text"], dtype=object)
            tensor = grpcclient.InferInput("text", list(array.shape), "BYTES")
        else:
            array = np.asarray(values["image"], dtype=np.float32)
            tensor = grpcclient.InferInput("image", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        name, started = f"grpc {self.scenario}", time.perf_counter()
        error, length = None, 0
        try:
            result = self.grpc.infer(MODEL, [tensor], headers=self.headers, client_timeout=30)
            length = result.get_response().ByteSize()
        except Exception as exc:  # InferenceServerException and transport errors alike
            error = exc
        events.request.fire(
            request_type="gRPC",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )


class RepeatGrpcUser(_PredictGrpc):
    scenario = "repeat"

    def pick(self):
        return repeat_input()


class UniqueGrpcUser(_PredictGrpc):
    scenario = "unique"

    def pick(self):
        return unique_input()


class MixedGrpcUser(_PredictGrpc):
    scenario = "mixed"

    def pick(self):
        return mixed_input()


if grpcclient is None:  # the stock locust image: the gRPC classes are not picked up at all
    for _cls in (RepeatGrpcUser, UniqueGrpcUser, MixedGrpcUser):
        _cls.abstract = True


# ------------------------------------------------------------------ SLO verdict
def slo_verdict(stats) -> dict:
    total = stats.total
    requests = total.num_requests
    failures = total.num_failures
    error_rate = failures / requests if requests else 1.0
    p99 = total.get_response_time_percentile(0.99) if requests else None
    broken = []
    if requests == 0:
        broken.append("no request completed")
    if p99 is not None and p99 > SLO_P99_MS:
        broken.append(f"p99 {p99:.0f} ms > {SLO_P99_MS:.0f} ms")
    if error_rate > SLO_ERROR_RATE:
        broken.append(f"error rate {error_rate:.2%} > {SLO_ERROR_RATE:.2%}")
    endpoints = {
        f"{entry.method} {entry.name}": {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "avg_ms": entry.avg_response_time,
        }
        for entry in stats.entries.values()
    }
    return {
        "model": MODEL,
        "slo": {"p99_ms": SLO_P99_MS, "error_rate": SLO_ERROR_RATE},
        "requests": requests,
        "failures": failures,
        "error_rate": error_rate,
        "p99_ms": p99,
        "rps": total.total_rps,
        "passed": not broken,
        "broken": broken,
        "endpoints": endpoints,
    }


@events.quitting.add_listener
def check_slo(environment, **_kwargs) -> None:
    verdict = slo_verdict(environment.stats)
    if SUMMARY_JSON:
        with open(SUMMARY_JSON, "w") as handle:
            json.dump(verdict, handle, indent=2)
    if verdict["passed"]:
        print(f"SLO met: p99 {verdict['p99_ms']} ms, error rate {verdict['error_rate']:.2%}")
    else:
        print("SLO broken: " + "; ".join(verdict["broken"]))
        environment.process_exit_code = 1
