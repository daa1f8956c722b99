# Two commands matter: `make run` and `make test`. Everything else is installed by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench diagram readme screenshots check-config scenarios clean

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

screenshots: $(STAMP)
	INBOX_SCREENSHOT_DIR=docs/img $(BIN)/pytest -q tests/e2e/test_inbox_browser.py -k flow

check-config: $(STAMP)
	$(BIN)/orchestrator check-config

scenarios: $(STAMP)
	$(BIN)/orchestrator scenarios run

clean:
	rm -rf $(VENV) .pgdata .pgtest
