# Template repository tasks. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: venv test-tools demo test test-fast bench gpu-bundle gpu-check clean

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

## System programs some tests use: headless Chromium (report.html), pdflatex (report.tex); skipped with a note where
## apt-get cannot install them.
test-tools:
	bash scripts/install_test_tools.sh

## Bake a project on the offline digits set, train config/example.yaml on CPU, print the test accuracy.
demo: venv
	$(PY) scripts/demo.py

## All tests of the template (bakes every choice, trains a representative subset).
test: venv test-tools
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) --dist loadgroup

## Quick tests only (no training runs).
test-fast: venv
	$(PY) -m pytest tests -m "not slow" -n $(PYTEST_WORKERS) --dist loadgroup

## Benchmark: Lightning vs hand-written loop vs compute floor (prints ratios). BENCH_ARGS="--repeats 5" etc.
bench: venv
	$(PY) bench/bench.py $(BENCH_ARGS)

## Here, with the package index: the projects and wheels gpu-check needs on a GPU machine, into .gpu-bundle/.
gpu-bundle: venv
	$(PY) scripts/gpu_bundle.py

## On a GPU machine (its own python3 and torch, no network, no venv): one table of what works there.
gpu-check:
	python3 scripts/gpu_check.py

clean:
	rm -rf build .pytest_cache .gpu-bundle
