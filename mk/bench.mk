# Benchmarks and load tests (owned by benchmarks/, loadtests/).
#   make bench                         full run (< ~10 min on 2 cores) -> reports/bench-<time>/
#   make bench BENCH_ARGS=--tiny       seconds: digits only, short windows (what the tests run)
#   make loadtest                      headless Locust against a fresh local stack, exits 1 on SLO breach
#   make soak                          the mixed scenario for SOAK_TIME (default 10m): zero failures,
#                                      gateway RSS steady after warm-up (SOAK_ARGS: --max-rss-growth-pct ...)
#   make bench-gpu                     python -m benchmarks gpu (where a CUDA GPU exists)
#   make bench-rowcache                per-row vs whole-request cache, MiniLM text, 32 sentences with
#                                      0/50/90 % seen -> docs/results/row-cache/ (ROWCACHE_ARGS=...)
#   make perf-analyzer ARGS="..."      perf_analyzer (tritonclient 2.51's) with its libraries found,
#                                      e.g. ARGS="-m digits -u 127.0.0.1:8080 -i http" (the gateway)
.PHONY: bench loadtest soak bench-gpu bench-gateway perf-analyzer bench-rowcache

# Locust has its own venv: tritonclient[http] in .venv pins geventhttpclient<=2.0.2, which holds
# Locust at 2.18.4; loadtests/requirements.txt (also the loadtest image's) has tritonclient[grpc] only.
LOADTEST_VENV := .venv-loadtest
LOADTEST_STAMP := $(LOADTEST_VENV)/.installed

$(LOADTEST_STAMP): loadtests/requirements.txt
	test -x $(LOADTEST_VENV)/bin/python || $(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/python -m pip install --quiet --requirement loadtests/requirements.txt
	touch $@

install: $(LOADTEST_STAMP)

BENCH_ARGS ?=
LOADTEST_ARGS ?=
LOADTEST_TIME ?= 30s
LOADTEST_USERS ?= 16
SOAK_TIME ?= 10m
SOAK_ARGS ?=
GPU_ARGS ?=
ROWCACHE_ARGS ?=
ARGS ?=

bench: $(STAMP) ## Naive vs optimized, techniques, sweep, cost ranking -> reports/ (BENCH_ARGS=--tiny)
	$(PY) -m benchmarks run $(BENCH_ARGS)

loadtest: $(STAMP) $(LOADTEST_STAMP) ## Locust scenarios for LOADTEST_TIME: CSV + HTML + JSON + gateway RSS; non-zero exit on SLO breach
	$(PY) -m benchmarks loadtest --run-time $(LOADTEST_TIME) --users $(LOADTEST_USERS) $(LOADTEST_ARGS)

soak: $(STAMP) $(LOADTEST_STAMP) ## Mixed traffic for SOAK_TIME (default 10m): zero failures, steady gateway RSS, the SLO -> reports/soak-<time>/
	$(PY) -m benchmarks loadtest --soak --run-time $(SOAK_TIME) --users $(LOADTEST_USERS) \
		--classes MixedHttpUser $(SOAK_ARGS) $(LOADTEST_ARGS)

bench-gpu: ## GPU script: FP32/FP16/INT8 x batch sizes + serving, JSON + Markdown (runs without the venv too)
	PYTHONUNBUFFERED=1 $(if $(wildcard $(PY)),$(PY),python3) -m benchmarks gpu $(GPU_ARGS)

bench-gateway: $(STAMP) build/gateway-grpc build/paired-infer ## The gateway's own cost: hit p50, hits/s, miss overhead vs Triton direct, perf_analyzer -i http
	$(PY) -m benchmarks gateway $(GATEWAY_BENCH_ARGS)

perf-analyzer: $(STAMP) ## Triton's perf_analyzer with its libraries found: ARGS="-m digits -u 127.0.0.1:8080 -i http"
	@$(PY) -m benchmarks.perf $(ARGS)

bench-rowcache: $(STAMP) build/gateway-grpc build/row-load ## Per-row vs whole-request cache on MiniLM text -> docs/results/row-cache/
	$(PY) -m benchmarks.row_cache $(ROWCACHE_ARGS)
