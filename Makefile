# fraglife: an executable design book. `make lab` to read, `make test` to check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fraglife-installed
EXTRAS ?= test

.PHONY: setup lab test run bench clean

# One install per venv; re-done only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m ipykernel install --prefix "$(abspath $(VENV))" --name fraglife --display-name "Python (fraglife)" >/dev/null
	@touch $@

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=book

test: setup
	$(BIN)/python -m pytest -q

run: setup
	$(BIN)/fraglife run

bench: setup
	$(BIN)/fraglife bench --json

clean:
	rm -rf build
