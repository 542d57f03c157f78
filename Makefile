# The two commands a new machine needs:
#   make demo   set up, then run the demo district end to end on embedded defaults (no servers)
#   make test   set up (including the test servers' system packages), then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export ETL_PROJECT_HOME ?= $(CURDIR)/.etl_project
export DAGSTER_HOME ?= $(ETL_PROJECT_HOME)/dagster

.PHONY: setup demo test system-deps ui lint bench cluster-up cluster-down

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BIN)/etl-project demo

system-deps:
	scripts/install-system-deps

test: setup system-deps
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check etl_project etl_project_tests
	$(BIN)/ruff format --check etl_project etl_project_tests

ui: setup
	mkdir -p $(DAGSTER_HOME)
	PATH=$(CURDIR)/$(BIN):$$PATH VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev

bench: setup
	$(BIN)/etl-project bench --students $${STUDENTS:-100000}

# The multi-worker deployment on this machine (docs/deploy.md); WORKERS=N, CLUSTER_DIR=folder
CLUSTER_DIR ?= $(ETL_PROJECT_HOME)/cluster
cluster-up: setup system-deps
	$(BIN)/etl-project cluster up --workers $${WORKERS:-2} --dir $(CLUSTER_DIR)

cluster-down:
	$(BIN)/etl-project cluster down --dir $(CLUSTER_DIR)
