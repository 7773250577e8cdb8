# Two commands on a fresh machine: `make up` (install, build the demo models, start the stack)
# and `make test`. Everything installs into .venv.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL ?=
RUN_DIR := .run

.DEFAULT_GOAL := help
.PHONY: help install convert up down status test clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with every extra

convert: $(STAMP) ## Build the demo models that are missing from model_repository/
	$(PY) -m conversion demo

up: convert ## Install, build missing models, start redis + tritonserver + gateway in the background
	$(PY) -m localstack up --run-dir $(RUN_DIR)

down: ## Stop exactly the processes that `make up` started
	@test -x $(PY) && $(PY) -m localstack down --run-dir $(RUN_DIR) || echo "nothing to stop"

status: ## Show the local stack's processes
	$(PY) -m localstack status --run-dir $(RUN_DIR)

test: $(STAMP) ## Run the whole test suite (starts its own redis-server and tritonserver)
	$(PY) -m pytest -ra $(PYTEST_ARGS)

clean: down ## Remove the run folder and generated models (keeps .venv)
	rm -rf $(RUN_DIR) reports
	find model_repository -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
