# Tuning the served configuration on this machine (owned by benchmarks/optimize.py).
#   make optimize MODEL=digits|minilm [SLO_P99_MS=100] [CONCURRENCY=32] [BUDGET_MIN=10] [REMEASURE=1]
#   make optimize MODEL=pkg.mod:factory|model.onnx|hf:FOLDER NAME=... CALIB=... VALID=...
#        converts through `make convert` first (same variables), then tunes NAME
# Writes model_repository/<variant>/config.pbtxt (old one: configs/previous.pbtxt), the text
# ensemble's encoder step, model_repository/<model>/tuning.json and reports/optimize-<model>-<time>/.
.PHONY: optimize

SLO_P99_MS ?= 100
CONCURRENCY ?= 32
BUDGET_MIN ?= 10
REMEASURE ?=
OPTIMIZE_ARGS ?=
# a demo model converts inside the command; MODEL=<source> goes through `make convert` as NAME
OPTIMIZE_NAME = $(if $(or $(findstring :,$(MODEL)),$(findstring /,$(MODEL)),$(findstring .onnx,$(MODEL))),$(NAME),$(MODEL))

optimize: $(STAMP) ## Tune MODEL's variant, batching, instances on this machine; make up serves it (see mk/optimize.mk)
	@test -n "$(MODEL)" || { echo "error: MODEL is required: make optimize MODEL=digits|minilm|<source> NAME=..."; exit 2; }
	$(if $(filter-out $(MODEL),$(OPTIMIZE_NAME)),test -f model_repository/$(OPTIMIZE_NAME)/manifest.json || $(MAKE) convert MODEL="$(MODEL)" NAME="$(NAME)")
	$(PY) -m benchmarks optimize "$(OPTIMIZE_NAME)" --slo-p99-ms $(SLO_P99_MS) --concurrency $(CONCURRENCY) \
		--budget-min $(BUDGET_MIN) $(if $(REMEASURE),--remeasure) $(OPTIMIZE_ARGS)
