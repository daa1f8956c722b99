# Two commands matter: `make run` and `make test`. Everything else is installed by them.
# `make run` installs the runtime dependencies only; `make test` (and lint, bench) add the
# `dev` extra (pytest, ruff, mypy, playwright).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV     := $(VENV)/.installed-dev

.PHONY: run test faults lint bench diagram readme screenshots check-config doctor scenarios clean venv

$(RUNTIME): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV)

venv: $(DEV)

run: $(RUNTIME)
	$(BIN)/orchestrator serve

test: $(DEV)
	$(BIN)/pytest -q

# The fault suite (tests/faults): real processes under kill -9, a stopped PostgreSQL, Graph
# and vendor faults, signed webhook fuzzing; prints one FAULTS line per scenario (~4 min).
faults: $(DEV)
	ORCHESTRATOR_FAULTS=1 $(BIN)/pytest -q -s tests/faults

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# End-to-end benchmark (a few minutes; prints a table, writes bench-results.json, asserts
# nothing). Options: make bench BENCH_ARGS="--scenario closed --seconds 5"
bench: $(DEV)
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

diagram: $(RUNTIME)
	$(BIN)/orchestrator diagram

readme: $(RUNTIME)
	$(BIN)/python -m orchestrator.ops.readme

screenshots: $(DEV)
	INBOX_SCREENSHOT_DIR=docs/img $(BIN)/pytest -q tests/e2e/test_inbox_browser.py -k flow

check-config: $(RUNTIME)
	$(BIN)/orchestrator check-config

doctor: $(RUNTIME)
	$(BIN)/orchestrator doctor

scenarios: $(RUNTIME)
	$(BIN)/orchestrator scenarios run

# Stops the embedded PostgreSQL of .pgdata/.pgtest if one runs, then deletes the virtualenv
# and both databases: the next `make run` starts from nothing.
clean:
	-test -x $(BIN)/python && $(BIN)/python -m orchestrator.store.embedded --stop .pgdata .pgtest
	rm -rf $(VENV) .pgdata .pgtest build *.egg-info
