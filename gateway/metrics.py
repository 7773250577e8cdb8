"""The gateway's Prometheus metrics.

One worker keeps them in its process. Several workers (GATEWAY_WORKERS > 1) share a
prometheus-client multiprocess directory (PROMETHEUS_MULTIPROC_DIR, set up by `python -m gateway`),
so whichever worker answers /metrics reports the sum over all of them.
"""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()

# Fine below 1 ms: a cache hit is answered in a few hundred microseconds.
LATENCY_BUCKETS = (
    0.0001,
    0.0002,
    0.0003,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
)

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by model, route and HTTP status.",
    ["model", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
TRITON_DURATION = Histogram(
    "gateway_triton_duration_seconds",
    "Time of one Triton inference call.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
CACHE_LOOKUP_DURATION = Histogram(
    "gateway_cache_lookup_duration_seconds",
    "Time of one Redis cache lookup.",
    buckets=LATENCY_BUCKETS,
)
CACHE_HITS = Counter("gateway_cache_hits", "Predictions answered from Redis.", ["model"])
CACHE_MISSES = Counter("gateway_cache_misses", "Predictions not found in Redis.", ["model"])
CACHE_ROW_HITS = Counter(
    "gateway_cache_row_hits",
    "Rows of batched requests answered from Redis (models with row_cache on).",
    ["model"],
)
CACHE_ROW_MISSES = Counter(
    "gateway_cache_row_misses",
    "Rows of batched requests not found in Redis (computed, or joined another request's).",
    ["model"],
)
CACHE_ERRORS = Counter(
    "gateway_cache_errors", "Cache operations that failed or were skipped.", ["op"]
)
COALESCED = Counter(
    "gateway_coalesced_requests",
    "Requests that waited on an identical in-flight request.",
    ["model"],
)
IN_FLIGHT = Gauge(
    "gateway_in_flight_requests",
    "Prediction requests being processed.",
    multiprocess_mode="livesum",
)
REDIS_ERRORS = Counter("gateway_redis_errors", "Redis errors and timeouts.")
TRITON_ERRORS = Counter(
    "gateway_triton_errors", "Triton calls that failed, by status code.", ["code"]
)
SHED = Counter("gateway_shed_requests", "Requests refused because too many were in flight.")
CACHE_BYPASSED = Counter(
    "gateway_cache_bypassed",
    "Answers not cached although caching is on: no_fingerprint (the model's config has none) "
    "or non_finite (an output holds NaN or Infinity).",
    ["model", "reason"],
)
QUEUE_REJECTIONS = Counter(
    "gateway_queue_rejections",
    "Requests Triton refused from its queue: queue_full, queue_timeout, rate_limited.",
    ["reason"],
)


def exposition() -> bytes:
    """The text exposition of this process's metrics, or of every worker's in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def worker_exiting() -> None:
    """Drop this worker's live gauges from the shared directory (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
