# Two entry points, each doing its own set-up on a fresh machine (a virtualenv in .venv):
#   make main   the main job: the cpu-quick sweep on real CIFAR-10, then its report
#   make test   lint + format check + the test suite (what CI runs)
VENV := .venv
PY := $(VENV)/bin/python
SWEEP ?= sweeps/cpu-quick.toml
# A fresh run goes beside the committed reference results, not into them (which would skip
# every finished cell): results/cpu-quick-rerun and reports/cpu-quick-rerun.
RUN_NAME ?= $(basename $(notdir $(SWEEP)))-rerun
# The committed reference the rerun is compared with (skipped when there is none).
REF_NAME ?= $(basename $(notdir $(SWEEP)))

.PHONY: setup main test lint pytest bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,offline,ray,slurm,tensorboard]'
	touch $@

setup: $(VENV)/.installed

main: setup
	$(VENV)/bin/regbench sweep run $(SWEEP) --results-dir results/$(RUN_NAME)
	$(VENV)/bin/regbench report results/$(RUN_NAME) --out reports/$(RUN_NAME)
	@# compare exits 1 when the rerun differs beyond noise (seed spread or tolerance): shown, not a failure of main
	@if [ ! -f results/$(REF_NAME)/runs.csv ]; then \
		echo "make main: no results/$(REF_NAME)/runs.csv to compare the rerun with"; \
	else \
		$(VENV)/bin/regbench compare results/$(REF_NAME) results/$(RUN_NAME); code=$$?; \
		if [ $$code -eq 1 ]; then \
			echo "make main: the rerun differs from results/$(REF_NAME) beyond noise (table above)"; \
		elif [ $$code -ne 0 ]; then exit $$code; fi; \
	fi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

pytest: setup
	$(PY) -m pytest -q

test: lint pytest

bench: setup
	$(PY) -m pytest benchmarks/ --benchmark-only -q
