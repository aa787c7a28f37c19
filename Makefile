# Two commands on a fresh clone: `make repro` and `make test`.
# VENV can point elsewhere (CI keeps one cached venv per lock-file hash).
VENV ?= .venv
PYTHON_BASE ?= python3.11
BIN := $(VENV)/bin
# Stage commands say `python`; put the venv first so DVC runs ours.
export PATH := $(abspath $(BIN)):$(PATH)
# This checkout's code first, even when the venv is a shared cache made from another clone.
export PYTHONPATH := $(CURDIR)/src:$(CURDIR)
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: help venv repro test test-project test-others test-fast ui bench kernel-check lint lock compare gate promote calibrate tune tune-bench clean

help:  ## this list (the first target, so a bare `make` shows it)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 16

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON_BASE) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)  ## install requirements.lock into VENV (every target does this first when needed)

repro: $(STAMP)  ## run the whole pipeline (only what changed)
	dvc repro

# Two pytest sessions side by side: the tests of the reproduced e2e project (the session
# fixture e2e_project, built once) and all the others. pytest-xdist cannot keep them
# together here: its loadgroup marks are lost under pytest 9 (every worker rebuilt it).
PROJECT_TESTS := tests/test_deps.py tests/test_pipeline.py tests/test_queue_log.py
test: $(STAMP)  ## every test: unit, family, end-to-end (traced deps, PostgreSQL); what CI runs
	$(MAKE) --no-print-directory -j2 --output-sync=target test-project test-others

test-project: $(STAMP)
	$(BIN)/pytest $(PROJECT_TESTS)

test-others: $(STAMP)
	$(BIN)/pytest $(addprefix --ignore=,$(PROJECT_TESTS))

test-fast: $(STAMP)  ## the edit loop: unit and family tests, no end-to-end dvc repro, one process per core
	$(BIN)/pytest -m "not e2e" -n auto --dist loadscope

ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000 over the repo's tracking store
	@echo "MLflow 3.17 opens a new browser in its GenAI view: click 'Model training' in the sidebar once (remembered); links with ?workflowType=machine_learning open there directly"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

bench: $(STAMP)  ## time a cold and a no-op `dvc repro`; writes reports/benchmarks.json
	$(BIN)/python -m mlfund.bench --output reports/benchmarks.json

kernel-check: $(STAMP)  ## same float bits on other CPUs? fingerprints here and under qemu's Haswell and EPYC
	$(BIN)/python -m mlfund.kernel_check --compare reports/kernel_check.json

compare: $(STAMP)  ## best MLflow run per family across experiments
	$(BIN)/python -m mlfund.compare

K ?= 5
FAMILIES ?=
calibrate: $(STAMP)  ## retrain each seeded family over K seeds (default 5); writes reports/calibration.json
	$(BIN)/python -m mlfund.calibrate --k $(K) $(if $(FAMILIES),--families $(FAMILIES))

FAMILY ?=
TRIALS ?= 12
WORKERS ?= 1
STUDY ?=
STORAGE ?=
APPLY ?=
tune: $(STAMP)  ## Optuna search of FAMILY's tune.yaml space: TRIALS, WORKERS, STUDY, STORAGE (postgresql://...), APPLY=1|queue
	@test -n "$(FAMILY)" || { echo "usage: make tune FAMILY=<family> [TRIALS=12 WORKERS=1 STUDY= STORAGE= APPLY=]"; exit 2; }
	dvc repro split  # the data every trial reads (a no-op when up to date)
	$(BIN)/python -m mlfund.tune --family $(FAMILY) --trials $(TRIALS) --workers $(WORKERS) $(if $(STUDY),--study $(STUDY)) $(if $(STORAGE),--storage '$(STORAGE)') $(if $(filter queue,$(APPLY)),--apply queue,$(if $(APPLY),--apply))

tune-bench: $(STAMP)  ## 12 trials of rnn with 1 and 2 workers, with and without pruning; into reports/benchmarks.json
	$(BIN)/python -m mlfund.tune_bench --family rnn --trials 12 --set rnn.epochs=15 --output reports/benchmarks.json

BASELINE ?= HEAD
gate: $(STAMP)  ## fail when a metric regresses against BASELINE (default HEAD); rules in gate.yaml
	$(BIN)/python -m mlfund.gate --baseline $(BASELINE)

promote: $(STAMP)  ## after `make gate` passes: alias champion on the registered versions models/*/manifest.json name
	$(BIN)/python -m mlfund.promote

lint: $(STAMP)  ## ruff check and format check
	$(BIN)/ruff check src stages tests
	$(BIN)/ruff format --check src stages tests

# uv's universal resolution: one lock for Linux x86_64/aarch64 and macOS arm64 (platform
# markers from uv, never by hand). The current pins are uv's preferences (it reads the
# --output-file first), so a re-lock keeps them and only resolves what changed in
# pyproject.toml; UPGRADE=1 moves every pin to its newest release. uv reads neither
# pip.conf nor PIP_* variables: it resolves against PyPI (or UV_DEFAULT_INDEX), the index
# every platform installs from, fetching metadata only (no wheel downloads). Deliberately:
# given this build machine's pip sources (find-links /opt/wheels, file:///opt/pypi*/simple,
# x86_64 wheels of a few releases), uv takes each package's versions from the first index
# that has it and some 60 pins drift to older releases. pip keeps using those sources to
# install (`make`). The pinned uv lives in a scratch venv, not the project's.
UV_VERSION := 0.13.9
LOCK_PYTHON := 3.11
UV_VENV := /tmp/mlfund-lock
UPGRADE ?=
lock:  ## re-resolve pyproject.toml [dev] into requirements.lock (Linux, macOS) + conda.yaml; UPGRADE=1 for newest
	$(UV_VENV)/bin/uv --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' || { \
	  rm -rf $(UV_VENV) && $(PYTHON_BASE) -m venv $(UV_VENV) && \
	  $(UV_VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_VENV)/bin/uv pip compile pyproject.toml --extra dev --universal \
	  --python-version $(LOCK_PYTHON) --custom-compile-command 'make lock' \
	  --output-file requirements.lock $(if $(UPGRADE),--upgrade)
	$(UV_VENV)/bin/python -m mlfund.lockfile --lock requirements.lock --output conda.yaml \
	  --python $(LOCK_PYTHON)

clean:  ## remove pipeline outputs and the tracking store (keeps the venv)
	rm -rf data models mlruns mlflow.db reports/figures reports/train reports/validation/docs
