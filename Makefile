# Two commands for a fresh machine: `make demo` and `make test`. Every target bootstraps what it
# needs: uv (from PyPI, into .tools/ when it is not on PATH), the ops venv (.venv, from uv.lock)
# and, for serving, the scoring venv (.venv-scoring, from the lock scoring/requirements.txt).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen --no-sync
OPS_STAMP := .venv/.synced
# Azurite (the Azure Storage emulator, the local blob storage) from package-lock.json.
NODE_STAMP := node_modules/.installed

.PHONY: help demo test lint fmt typecheck unit bootstrap azurite clean reset mlflow-ui scoring-env bench bench-scoring locks

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing it from PyPI into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

# Bytecode is compiled at install: without it every command starts several seconds slower.
# The project's own packages too: they are installed editable, so uv does not compile them, and
# where PYTHONDONTWRITEBYTECODE is set nothing else will (~40 ms of every command; Python
# recompiles a source edited since, in memory).
$(OPS_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	$(RUN) python -m compileall -q -j 0 pipelines training infra scoring >/dev/null
	@touch $@

bootstrap: $(OPS_STAMP) ## Create or update the ops environment

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: Azurite needs Node.js and npm; install them (e.g. apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

azurite: $(NODE_STAMP) ## Install Azurite, the local blob storage (node_modules/, from package-lock.json)

# KEEP_SERVING=1 leaves the endpoints running after the demo (stop them with `mlops teardown`).
KEEP_SERVING ?= 0
# MODEL=breast-cancer runs the demo with another model definition (MLOPS_MODEL_SPEC, training/spec.py).
MODEL ?=
SPEC_ENV := $(if $(MODEL),MLOPS_MODEL_SPEC=$(MODEL) ,)

demo: $(OPS_STAMP) $(NODE_STAMP) ## The whole local lifecycle: data tests, train, gate, register, QA, blue/green
	$(SPEC_ENV)$(RUN) mlops demo $(if $(filter 1,$(KEEP_SERVING)),--keep-serving,)

scoring-env: $(OPS_STAMP) ## Create or update the scoring environment (.venv-scoring)
	$(RUN) python -c "from pipelines.scoring_env import ensure_scoring_env; ensure_scoring_env()"

# The environment locks (training/requirements.txt, scoring/requirements.txt and
# scoring/batch-requirements.txt) from their requirements.in inputs and uv.lock; needs PyPI.
# UPGRADE=1 also moves the pins nothing constrains.
UPGRADE ?= 0
locks: $(OPS_STAMP) ## Regenerate the environment locks (hashed pins) after editing a requirements.in or uv.lock
	$(RUN) python -m pipelines.locks --uv "$(UV)" $(if $(filter 1,$(UPGRADE)),--upgrade,)

bench: $(OPS_STAMP) scoring-env ## Every benchmark (start-up, batch, scoring, collection, instructions): one table, .mlops/benchmarks.json (~10 min)
	$(RUN) python tests/benchmarks/bench_all.py

bench-scoring: $(OPS_STAMP) scoring-env ## Benchmark the scoring service and data collection against their limits (~4 min)
	$(RUN) python tests/benchmarks/bench_scoring.py

lint: $(OPS_STAMP) ## ruff lint and format check, import architecture (no cycles, layers)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports --no-cache

fmt: $(OPS_STAMP) ## Format and autofix with ruff
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: $(OPS_STAMP) ## mypy
	$(RUN) mypy

unit: $(OPS_STAMP) $(NODE_STAMP) ## pytest only
	$(RUN) pytest -q

test: lint typecheck unit ## Lint, type check and the whole test suite

mlflow-ui: $(OPS_STAMP) ## Open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(RUN) mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.mlops/mlflow.db --host 127.0.0.1 --port 5000

STATE_DIR := $(or $(MLOPS_STATE_DIR),.mlops)

# Every definition's state lives in .mlops (the default) or .mlops/<name>: stop them all.
reset: ## Stop local servers and forget all local state (runs, models, deployments)
	@if [ -x .venv/bin/mlops ]; then \
	  for state in "$(STATE_DIR)" "$(STATE_DIR)"/*/; do \
	    if [ -d "$$state/deployments" ]; then MLOPS_STATE_DIR="$$state" .venv/bin/mlops teardown || true; fi; \
	  done; \
	fi
	rm -rf "$(STATE_DIR)"

clean: reset ## Also remove the virtual environments and node_modules
	rm -rf .venv .venv-scoring .venv-policy .tools node_modules
