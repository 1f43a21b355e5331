# The two entry points of the README: `make demo` and `make test`.
# Each creates (or refreshes, when pyproject.toml changes) the virtual environment .venv,
# installing the CPU build of torch 2.13.0 first: a bare `torch` requirement would pull a
# multi-GB CUDA build on a CPU-only machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.astroray-installed
TORCH := torch==2.13.0
# Wall-clock cap on the whole test run: a Ray job short of CPUs hangs rather than fails.
TEST_TIMEOUT ?= 2700

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/astroray demo --out out/demo

test: $(STAMP)
	timeout $(TEST_TIMEOUT) $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
