# Sales OS entry points. `make run` serves the demo; `make test` runs the whole suite.
# Everything goes through the project's own virtualenv (.venv), created on first use.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3.12 2>/dev/null || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help venv install install-dev run test lint format check bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --quiet --upgrade pip

venv: $(PY)

install: $(PY) ## Install the runtime dependencies (skipped when pyproject.toml is unchanged)
	$(PY) scripts/install.py

install-dev: $(PY) ## Install runtime + test/lint dependencies
	$(PY) scripts/install.py --dev

run: install ## Migrate SQLite, seed the demo business, serve on 127.0.0.1:8000 (PORT=...)
	PORT=$(PORT) $(PY) scripts/run_dev.py

test: install-dev ## Run the whole suite (PostgreSQL + Redis when reachable), ARGS go to pytest
	$(PY) scripts/run_tests.py $(ARGS)

lint: install-dev ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: lint test ## What CI runs: lint, then the suite

bench: install ## Run every bench/*.py (ARGS are passed, e.g. ARGS=--quick)
	$(PY) scripts/run_bench.py $(ARGS)

clean: ## Remove caches and the local SQLite files (keeps .venv)
	rm -rf .pytest_cache .ruff_cache staticfiles var/test.sqlite3
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
