# kybernetes: `make up` runs a single-node cluster in the foreground; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?=
PYTEST_ARGS ?=

.PHONY: up test deps venv apt unit bench clean cri-stubs

# Debian packages the cluster and its tests need on a fresh machine.
APT_PACKAGES := sqlite3 containerd runc containernetworking-plugins busybox-static docker-registry gcc libc6-dev iproute2 util-linux etcd-server

deps: apt venv

apt:
	@bash scripts/apt-install.sh $(APT_PACKAGES)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@bash scripts/retry.sh $(PIP) install -q --upgrade pip
	@bash scripts/retry.sh $(PIP) install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed cri-stubs

# CRI v1 stubs from kybernetes/cri/cri_v1.proto into kybernetes/cri/_gen/ (git-ignored); no-op when current.
cri-stubs: $(VENV)/.installed
	@$(PY) -c "import kybernetes.cri._build as b; b.main()"

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
