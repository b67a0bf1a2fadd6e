# kybernetes: `make up` runs a single-node cluster in the foreground; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?=
PYTEST_ARGS ?=

.PHONY: up test deps venv apt unit bench clean

# Debian packages the cluster and its tests need on a fresh machine.
APT_PACKAGES := sqlite3

deps: apt venv

apt:
	@bash scripts/apt-install.sh $(APT_PACKAGES)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@bash scripts/retry.sh $(PIP) install -q --upgrade pip
	@bash scripts/retry.sh $(PIP) install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

up: deps
	$(VENV)/bin/kyb server $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

test: deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest -q tests/unit

bench: deps
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) .pytest_cache
