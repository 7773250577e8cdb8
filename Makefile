# Two commands on a fresh machine: `make up` (install, build the demo models, start the stack)
# and `make test`. Everything installs into .venv.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL ?=
RUN_DIR := .run

.DEFAULT_GOAL := help
.PHONY: help install tools up down status test lint audit clean

# Each area keeps its targets in its own fragment: mk/conversion.mk (convert, profile),
# mk/bench.mk (bench, loadtest, soak, bench-gpu), mk/gateway-grpc.mk (the native gRPC front end).
include $(wildcard mk/*.mk)

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) $(GATEWAY_GRPC) ## Create .venv, install the project with every extra, build gateway-grpc

tools: ## Install the offline deployment checkers and the hit load generator (prometheus, promtool, redis exporter, wrk)
	bash scripts/install-deploy-tools.sh

up: convert $(GATEWAY_GRPC) ## Install, build missing models, start redis + tritonserver + gateway in the background
	$(PY) -m localstack up --run-dir $(RUN_DIR)

down: ## Stop exactly the processes that `make up` started
	@test -x $(PY) && $(PY) -m localstack down --run-dir $(RUN_DIR) || echo "nothing to stop"

status: ## Show the local stack's processes
	$(PY) -m localstack status --run-dir $(RUN_DIR)

lint: $(STAMP) ## ruff check and ruff format --check (make test runs it first)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The demo models are built before pytest starts: a conversion inside a test runs under pytest-timeout's
# 300 s SIGALRM, which on a loaded machine fired inside the converter's native code (the session died).
test: $(STAMP) tools lint convert ## Run the whole test suite: ruff, gateway-grpc's Go tests, missing demo models, then pytest
	GATEWAY_GRPC_TEST=1 bash gateway-grpc/build.sh $(PY) $(GATEWAY_GRPC)
	$(PY) -m pytest -ra $(PYTEST_ARGS)

audit: $(STAMP) ## Audit the installed dependencies for known vulnerabilities (pip-audit)
	$(VENV)/bin/pip-audit --progress-spinner off --skip-editable

clean: down ## Remove the run folder and generated models (keeps .venv)
	rm -rf $(RUN_DIR) reports
	find model_repository -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
