# Everything a developer or CI runs. `make run` and `make test` install what they need first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench bench-history clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Find or start PostgreSQL and Redis, migrate, then serve on http://127.0.0.1:5001 with one worker.
run: install
	$(BIN)/lvd run

## The whole suite against real PostgreSQL, Redis, worker processes and Chromium.
test: install
	$(BIN)/pytest

## Throughput, latency, memory and validation figures as one table, the time from POST to
## the row painted in the browser at 100 events/s, then memory over a 10-minute run
## (about 20 minutes in all; BENCH_QUICK=1 BENCH_SOAK_MINUTES=2 for a quick look).
bench: install
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.browser_latency --rate 100 --seconds 20
	$(BIN)/python -m bench.soak

## Every page and API call timed over 20 million stored events, and ingest into them (see README).
bench-history: install
	$(BIN)/python -m bench.history

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .lvd artifacts .pytest_cache .mypy_cache .ruff_cache
