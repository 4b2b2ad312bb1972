# Two commands for a newcomer: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: serve test lint install dev migrate bench bench-peer bench-mlflow proto clean

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

# Ruff first (seconds), then mypy beside the tests (a cold mypy takes a core for a minute or two
# while most tests wait on real server processes); `make test` fails if either finds anything.
# Two workers, a whole test file each (module-scoped servers stay in one worker). Each sandbox has
# its own process limit (a pids cgroup, docs/security.md), so the workers' sandboxes do not starve
# each other.
test: dev
	$(VENV)/bin/ruff check src tests bench
	@$(VENV)/bin/mypy > .mypy.out 2>&1 & mypy=$$!; \
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15; tests=$$?; \
	wait $$mypy; typed=$$?; echo "mypy:"; cat .mypy.out; rm -f .mypy.out; \
	test $$tests -eq 0 -a $$typed -eq 0

lint: dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: dev bench-peer bench-mlflow
	$(PY) -m bench

# LangGraph's dev server, bench/agent_run.py's baseline: a venv of its own (it pins protobuf<7,
# below what mlagent's gRPC stubs need).
bench-peer: .venv-langgraph/bin/langgraph

.venv-langgraph/bin/langgraph: bench/langgraph_peer/requirements.txt
	$(PYTHON) -m venv .venv-langgraph
	.venv-langgraph/bin/pip install -q -r bench/langgraph_peer/requirements.txt
	touch $@

# `mlflow models serve`, bench/predict.py's baseline: a venv of its own (bench.predict finds it), with
# mlagent's scikit-learn, pandas and NumPy versions, so both load the same pickled models.
bench-mlflow: .venv-mlflow/bin/mlflow

.venv-mlflow/bin/mlflow: bench/mlflow_peer/requirements.txt $(VENV)/.base
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install -q -r bench/mlflow_peer/requirements.txt $$($(PY) -c 'import numpy, pandas, sklearn; \
		print(f"scikit-learn=={sklearn.__version__} pandas=={pandas.__version__} numpy=={numpy.__version__}")')
	touch $@

clean:
	rm -rf $(VENV) .mlagent .venv-langgraph .venv-mlflow

# Regenerate the gRPC stubs from src/mlagent/grpc/agent_runtime.proto (tests/test_grpc_stubs.py checks them).
proto: dev
	$(PY) -m mlagent.grpc.generate
