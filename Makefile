# Two commands for a newcomer: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: serve test lint install dev migrate bench bench-peer proto clean

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

# Lint and type check first (both at zero findings; config in pyproject.toml), then two workers,
# a whole test file each (module-scoped servers stay in one worker): most tests wait on real server
# processes, so two cores run two files at once. Each sandbox has its own process limit (a pids
# cgroup, docs/security.md), so the workers' sandboxes do not starve each other.
test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

lint: dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: dev bench-peer
	$(PY) -m bench

# LangGraph's dev server, bench/agent_run.py's baseline: a venv of its own (it pins protobuf<7,
# below what mlagent's gRPC stubs need).
bench-peer: .venv-langgraph/bin/langgraph

.venv-langgraph/bin/langgraph: bench/langgraph_peer/requirements.txt
	$(PYTHON) -m venv .venv-langgraph
	.venv-langgraph/bin/pip install -q -r bench/langgraph_peer/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .mlagent .venv-langgraph

# Regenerate the gRPC stubs from src/mlagent/grpc/agent_runtime.proto (tests/test_grpc_stubs.py checks them).
proto: dev
	$(PY) -m mlagent.grpc.generate
