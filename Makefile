# Two entry points, each doing its own set-up on a fresh machine (a virtualenv in .venv):
#   make main   the main job: the cpu-quick sweep on real CIFAR-10, then its report
#   make test   lint + format check + the test suite (what CI runs)
VENV := .venv
PY := $(VENV)/bin/python
SWEEP ?= sweeps/cpu-quick.toml
# A fresh run goes beside the committed reference results, not into them (which would skip
# every finished cell): results/cpu-quick-rerun and reports/cpu-quick-rerun.
RUN_NAME ?= $(basename $(notdir $(SWEEP)))-rerun

.PHONY: setup main test lint pytest bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,offline,ray]'
	touch $@

setup: $(VENV)/.installed

main: setup
	$(VENV)/bin/regbench sweep run $(SWEEP) --results-dir results/$(RUN_NAME)
	$(VENV)/bin/regbench report results/$(RUN_NAME) --out reports/$(RUN_NAME)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

pytest: setup
	$(PY) -m pytest -q

test: lint pytest

bench: setup
	$(PY) -m pytest benchmarks/ --benchmark-only -q
