# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test test-fast test-setup lint bench clean

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

## Debian's prometheus package (prometheus, promtool) for the Prometheus integration test and the
## alert rule tests, and chromium for the audit report's rendering test; those skip with a message
## when it cannot be installed.
test-setup:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1)) || \
	  echo "test-setup: could not install prometheus; its integration tests will be skipped"
	@command -v chromium >/dev/null || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1)) || \
	  echo "test-setup: could not install chromium; the audit report's rendering test will be skipped"

## The whole suite: tests (with a real Prometheus), lint, types, and the shipped policies' own tests.
test: $(VENV)/.installed-test test-setup
	$(BIN)/python -m pytest -q
	$(BIN)/guardproxy check policies policies/examples
	$(BIN)/guardproxy test policies/tests policies/examples/tests
	$(BIN)/ruff check guardproxy tests benchmarks training
	$(BIN)/mypy guardproxy
	bash deploy/check-helm.sh

## The edit loop: unit tests only (no server, no subprocess), lint and types; `make test` stays CI's command.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not e2e"
	$(BIN)/ruff check guardproxy tests benchmarks training
	$(BIN)/mypy guardproxy

## The benchmark suite (benchmarks/README.md): pass-through against a reference relay and LiteLLM,
## time to first token, cost of guards, scaling, memory, workers; about 15 minutes. Installs Debian's wrk
## if missing, and LiteLLM into benchmarks/.litellm-venv on first use. `make bench BENCH_ARGS=--quick`
## for a smoke run; BENCH_ARGS="--only ttft,guards" for some sections.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1)) || \
	  (echo "bench: could not install wrk (apt-get install wrk)" && false)
	$(BIN)/python benchmarks/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
