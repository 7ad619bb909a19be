# The README's quick start and the development loop. Each target sets itself up on a fresh clone.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
# The CPU build of torch; pinned here so that pip never pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast gate format setup bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH)"
	touch $@

demo: setup
	$(BIN)/runner run specs/quickstart.yaml
	@echo
	@echo "Runs are tracked in ./mlflow.db. To compare them in the browser:"
	@echo "  $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db   # then open http://127.0.0.1:5000"

# Everything, the end-to-end tests included (what CI runs after the gate).
test: setup
	$(BIN)/python -m pytest

# The fast tier for local work: everything not marked slow.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# The gate CI runs before the tests: lint, format and types, zero findings.
gate: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Fix what ruff can fix, and format.
format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) mlflow.db mlruns mlartifacts .specrun .pytest_cache
