# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## Start the proxy on $(HOST):$(PORT) in front of the built-in demo model, with policies/.
run: $(VENV)/.installed
	$(BIN)/guardproxy demo --host $(HOST) --port $(PORT) --policy policies

## The whole suite: tests, lint, types, and the shipped policies' own tests.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q
	$(BIN)/guardproxy check policies policies/examples
	$(BIN)/guardproxy test policies/tests policies/examples/tests
	$(BIN)/ruff check guardproxy tests benchmarks
	$(BIN)/mypy guardproxy

## Added latency of the proxy with no guards, against calling the demo upstream directly.
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/passthrough_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
