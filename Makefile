# Two commands for a newcomer: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: serve test lint install dev migrate bench proto clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.base

dev: $(VENV)/.dev

migrate: install
	$(VENV)/bin/mlagent migrate

serve: install
	$(VENV)/bin/mlagent serve

# One process: sandboxes of parallel workers share the `nobody` user's process limit and the two
# cores, which made some tests flaky. `pytest -n 2 --dist loadfile` (pytest-xdist) is there for a
# quicker local run.
test: lint
	$(PY) -m pytest -q

# Lint and type check, both at zero findings (config in pyproject.toml); `make test` runs it first.
lint: dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mlagent

# Regenerate the gRPC stubs from src/mlagent/grpc/agent_runtime.proto (tests/test_grpc_stubs.py checks them).
proto: dev
	$(PY) -m mlagent.grpc.generate
