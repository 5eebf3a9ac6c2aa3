# ml-pipelines: `make dev` starts the UI on LOCAL, `make test` runs the whole suite.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.ml-pipelines-installed
HOST ?= 127.0.0.1
PORT ?= 3000
ML_PIPELINES_ENV ?= LOCAL
PYTEST_ARGS ?=

.PHONY: help install dev test lint validate check-defs list reset-local aws-sandbox

help:
	@echo "make dev          install if needed, then dg dev on http://$(HOST):$(PORT) (ML_PIPELINES_ENV=$(ML_PIPELINES_ENV))"
	@echo "make test         install if needed, then lint and run the whole test suite (PYTEST_ARGS=... to narrow)"
	@echo "make lint         ruff: format check and lint (ruff format . / ruff check --fix . to repair)"
	@echo "make validate     check every config in model_configs/"
	@echo "make check-defs   load the code location as Dagster does (dg check defs)"
	@echo "make list         list the pipelines and their steps"
	@echo "make aws-sandbox  moto + fakesnow standing in for DEV on 127.0.0.1 (then: source .ml_pipelines/aws-sandbox.env)"
	@echo "make screenshots  the README's screenshots (docs/images), by the browser test's walkthrough (needs Chromium)"
	@echo "make reset-local  delete LOCAL state (.ml_pipelines/: storage mirror, envs, warehouse, Dagster runs)"

$(VPY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found (looked for python3.11, python3)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The stamp lives in the venv: deleting .venv reinstalls, editing pyproject.toml reinstalls.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -e '.[dev]'
	@command -v java >/dev/null || echo "warning: java not found; Glue steps (PySpark) need Java 17" >&2
	@touch $@

install: $(STAMP)

# The project's own instance (`ml-pipelines dagster-home`: <project>/.ml_pipelines/dagster_home, its
# dagster.yaml written from ml_pipelines/instance/), the one `ml-pipelines run` uses; a DAGSTER_HOME
# set in the shell is not used. `dg dev` serves the code location named in pyproject's [tool.dg].
dev: $(STAMP)
	@home="$$(ML_PIPELINES_ENV="$(ML_PIPELINES_ENV)" $(VENV)/bin/ml-pipelines dagster-home)" || exit 1; \
	echo "DAGSTER_HOME=$$home"; \
	VIRTUAL_ENV="$(CURDIR)/$(VENV)" DAGSTER_HOME="$$home" ML_PIPELINES_ENV="$(ML_PIPELINES_ENV)" $(VENV)/bin/dg dev -h $(HOST) -p $(PORT)

test: $(STAMP) lint
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

validate: $(STAMP)
	ML_PIPELINES_ENV="$(ML_PIPELINES_ENV)" $(VENV)/bin/ml-pipelines validate

check-defs: $(STAMP)
	ML_PIPELINES_ENV="$(ML_PIPELINES_ENV)" $(VENV)/bin/dg check defs

list: $(STAMP)
	ML_PIPELINES_ENV="$(ML_PIPELINES_ENV)" $(VENV)/bin/ml-pipelines list

reset-local:
	rm -rf .ml_pipelines

# DEV without an AWS account: moto and fakesnow on 127.0.0.1, provisioned for the examples
# (tests/aws/sandbox.py). Another terminal: `source .ml_pipelines/aws-sandbox.env`.
aws-sandbox: $(STAMP)
	$(VPY) -m tests.aws.sandbox

# The README's screenshots, taken by the browser test's walkthrough (tests/ui/browser.py).
screenshots: $(STAMP)
	$(VPY) -m tests.ui.browser --shots docs/images
