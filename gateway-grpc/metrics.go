package main

import "github.com/prometheus/client_golang/prometheus"

// The metrics of gateway/metrics.py under the same names; route is "grpc:ModelInfer", so dashboards
// that sum over the gateway's scrape targets count both front ends.
var (
	latencyBuckets = []float64{
		0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
		0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
	}
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_requests_total", Help: "Requests answered, by model, route and HTTP status.",
	}, []string{"model", "route", "status"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_request_duration_seconds", Help: "Time to answer a request.", Buckets: latencyBuckets,
	}, []string{"route"})
	tritonDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_triton_duration_seconds", Help: "Time of one Triton inference call.", Buckets: latencyBuckets,
	}, []string{"model"})
	cacheLookupDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gateway_cache_lookup_duration_seconds", Help: "Time of one Redis cache lookup.", Buckets: latencyBuckets,
	})
	cacheHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_hits_total", Help: "Predictions answered from Redis.",
	}, []string{"model"})
	cacheMisses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_misses_total", Help: "Predictions not found in Redis.",
	}, []string{"model"})
	cacheRowHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_row_hits_total", Help: "Rows of batched requests answered from Redis (models with row_cache on).",
	}, []string{"model"})
	cacheRowMisses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_row_misses_total", Help: "Rows of batched requests not found in Redis (computed, or joined another request's).",
	}, []string{"model"})
	cacheErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_errors_total", Help: "Cache operations that failed or were skipped.",
	}, []string{"op"})
	coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_coalesced_requests_total", Help: "Requests that waited on an identical in-flight request.",
	}, []string{"model"})
	inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_in_flight_requests", Help: "Prediction requests being processed.",
	})
	redisErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_redis_errors_total", Help: "Redis errors and timeouts.",
	})
	tritonErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_triton_errors_total", Help: "Triton calls that failed, by status code.",
	}, []string{"code"})
	shed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_shed_requests_total", Help: "Requests refused because too many were in flight.",
	})
	cacheBypassed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cache_bypassed_total",
		Help: "Answers not cached although caching is on: no_fingerprint (the model's config has none) or non_finite (an output holds NaN or Infinity).",
	}, []string{"model", "reason"})
	queueRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_queue_rejections_total",
		Help: "Requests Triton refused from its queue: queue_full, queue_timeout, rate_limited.",
	}, []string{"reason"})
)

func init() {
	prometheus.MustRegister(requests, requestDuration, tritonDuration, cacheLookupDuration, cacheHits,
		cacheMisses, cacheRowHits, cacheRowMisses, cacheErrors, coalesced, inFlight, redisErrors, tritonErrors, shed, cacheBypassed,
		queueRejections)
}
