# The front door: `make run` (the order service, demo mode) and `make test` (everything: the
# library's tests/ and the order service's service/tests/, the `testpaths` of pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
CODE := src service/src tests service/tests bench

.PHONY: install run test lint format typecheck docs docs-serve system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: the library and the order service with the dependencies they need to run.
$(RUNTIME): $(BIN)/python pyproject.toml service/pyproject.toml
	$(BIN)/pip install -q -e . -e ./service
	touch $(RUNTIME)

# Everything the tests, linters and docs need.
$(DEV): $(RUNTIME) pyproject.toml
	$(BIN)/pip install -q -e '.[dev]' -e ./service
	touch $(DEV)

install: $(DEV)

run: $(RUNTIME)
	mkdir -p var
	ORDERS_DEMO=1 $(BIN)/orders serve

# System packages the tests use that a fresh Debian machine lacks: Debian's chromium for the
# dashboard's browser test (never a browser download from a tool).
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "make: installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

lint: $(DEV)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

format: $(DEV)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

typecheck: $(DEV)
	$(BIN)/mypy

docs: $(DEV)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-serve: $(DEV)
	$(BIN)/mkdocs serve

test: system-deps lint typecheck docs
	$(BIN)/pytest $(PYTEST_ARGS)

# Peers (huey, persist-queue, procrastinate, SAQ, pgqueuer, aiohttp) come from the optional
# `bench` extra; oban-py needs Python >= 3.12, so it gets a virtual environment of its own
# (OBAN_VENV, driven by W1 as a child process). W3 needs wrk (Debian package) and the
# PostgreSQL rows need the server at 127.0.0.1:5432.
OBAN_VENV := .venv-oban
OBAN_PYTHON ?= PYENV_VERSION=3.12.1 python3.12

$(OBAN_VENV)/bin/python:
	$(OBAN_PYTHON) -m venv $(OBAN_VENV) || echo "no Python 3.12: W1 reports oban-py as not run"
	@if [ -x $(OBAN_VENV)/bin/python ]; then $(OBAN_VENV)/bin/pip install -q oban \
		|| echo "oban not installed: W1 reports oban-py as not run"; fi

bench: $(DEV) $(OBAN_VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev,bench]' -e ./service
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
		echo "wrk not installed: W3 will be reported as not run"
	mkdir -p var
	$(BIN)/python -m bench $(BENCH_ARGS) --json var/bench.jsonl

clean:
	rm -rf $(VENV) $(OBAN_VENV) var site .pytest_cache .mypy_cache .ruff_cache
