# aimaas — two commands: `make run` (serve with demo content) and `make test` (every test).
# Both create the virtual environment and install what they need on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Debian packages the test suite needs (installed when missing, if we may use apt-get).
DEBIAN_TEST_PACKAGES ?=
PYTEST_ARGS ?=

.PHONY: run test test-fast test-slow lint bench bench-upload bench-serving bench-train debian-deps clean help

help:
	@echo "make run    - install and start the server with demo content (http://127.0.0.1:8000/docs)"
	@echo "make test   - install dev dependencies and run lint, import rules and every test"
	@echo "make test-slow - the long-running tests (marker 'slow')"
	@echo "make bench-upload - upload benchmark (1 GB CSV; writes benchmarks/results/)"
	@echo "make bench-serving - serving vs a FastAPI floor, MLflow, BentoML, Ray Serve (wrk; ~25 min)"
	@echo "make bench-train - AutoML table and training job overhead"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps re-run the install whenever the dependency lists change.
$(VENV)/.stamp-run: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -e '.[demo,train,torch]'
	@touch $@

$(VENV)/.stamp-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	@touch $@ $(VENV)/.stamp-run

run: $(VENV)/.stamp-run
	$(BIN)/aimaas serve --demo

debian-deps:
	@missing=""; for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; \
	fi

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(VENV)/.stamp-dev debian-deps lint
	$(BIN)/python -m pytest -m "not slow" -n 2 $(PYTEST_ARGS)

test-slow: $(VENV)/.stamp-dev debian-deps
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench-upload: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/upload.py

# Needs Debian's wrk; the peers' virtual environments come from PyPI once (cached).
bench-serving: $(VENV)/.stamp-dev
	mkdir -p benchmarks/results
	benchmarks/serving/peers.sh
	$(BIN)/python benchmarks/serving/embeddings.py | tee benchmarks/results/serving-embeddings.md
	$(BIN)/python benchmarks/serving/rollout.py | tee benchmarks/results/serving-rollout.md

bench-train: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/train_overhead.py
	$(BIN)/python benchmarks/automl.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
