# Two commands matter: `make run` and `make test`. Everything else is installed by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test faults lint bench diagram readme check-config scenarios clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/orchestrator serve

test: $(STAMP)
	$(BIN)/pytest -q

# The fault suite (tests/faults): real processes under kill -9, a stopped PostgreSQL, Graph
# and vendor faults, signed webhook fuzzing; prints one FAULTS line per scenario (~4 min).
faults: $(STAMP)
	ORCHESTRATOR_FAULTS=1 $(BIN)/pytest -q -s tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

diagram: $(STAMP)
	$(BIN)/orchestrator diagram

readme: $(STAMP)
	$(BIN)/python -m orchestrator.ops.readme

check-config: $(STAMP)
	$(BIN)/orchestrator check-config

scenarios: $(STAMP)
	$(BIN)/orchestrator scenarios run

clean:
	rm -rf $(VENV) .pgdata .pgtest
