# Signalworks: `make demo` and `make test` work on a fresh machine (Python 3.11, no keys, no network
# beyond the package index).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export SIGNALWORKS_HOME ?= $(CURDIR)/.signalworks
export DAGSTER_HOME ?= $(SIGNALWORKS_HOME)/dagster
export OMP_WAIT_POLICY := PASSIVE
STAMP := $(VENV)/.installed

.PHONY: demo test ui bench lint install clean

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/signalworks demo --days 2

test: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(SIGNALWORKS_HOME)
