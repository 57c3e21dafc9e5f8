# One command each: `make run` (service on SQLite with demo data), `make test`, `make lint`, `make bench`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres lint fmt bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/leadstore init
	$(BIN)/leadstore demo
	$(BIN)/leadstore serve

# The whole suite, on SQLite and then on PostgreSQL (with Redis for the shared rate limit).
test: test-sqlite test-postgres

test-sqlite: $(VENV)/.installed
	$(BIN)/pytest

test-postgres: $(VENV)/.installed
	LEADSTORE_TEST_DATABASE_URL=$(TEST_PG_URL) $(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(VENV)/.installed
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# About 24 minutes on 2 cores; needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL) running.
# A quick look: make bench BENCH_ARGS="--databases sqlite --sizes 10000 --seconds 5"
bench: $(VENV)/.installed
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) leadstore.db leadstore.db-wal leadstore.db-shm leadstore.db-write-lock
