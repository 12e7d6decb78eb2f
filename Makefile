# The front door: `make run` (the order service, demo mode) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := src tests $(wildcard bench)

.PHONY: install run test lint format typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p var
	ORDERS_DEMO=1 $(BIN)/orders serve

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

format: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

# Peers (huey, persist-queue, procrastinate, SAQ, aiohttp) come from the optional `bench` extra;
# W3 needs wrk (Debian package) and the PostgreSQL rows need the server at 127.0.0.1:5432.
bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
		echo "wrk not installed: W3 will be reported as not run"
	mkdir -p var
	$(BIN)/python -m bench $(BENCH_ARGS) --json var/bench.jsonl

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
