# `make demo` sets everything up and runs the main job; `make test` runs the checks.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/keras-bnn-af demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every tier: `pytest` alone skips the `slow` one (full-size twins of fast tests).
test: lint
	$(BIN)/python -m pytest -m "slow or not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
