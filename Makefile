# fraglife: an executable design book. `make lab` to read, `make test` to check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fraglife-installed
EXTRAS ?= test,book
NPM_STAMP := node_modules/.fraglife-installed

.PHONY: setup lab test test-fast run bench clean vendor slides book publish talk reply chromium test-offline test-lab

# One install per venv; re-done only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m ipykernel install --prefix "$(abspath $(VENV))" --name fraglife --display-name "Python (fraglife)" >/dev/null
	@touch $@

# JupyterLab's settings overrides for this environment: no "get notified about official
# Jupyter news?" prompt and no update check, so the first screen is the overview.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): etc/jupyterlab/overrides.json $(STAMP)
	@mkdir -p $(dir $@)
	cp $< $@

setup: $(STAMP) $(LAB_OVERRIDES)

# Opens the overview, asks the network for nothing (no news feed, no update check); kernels
# talk to the server over Unix sockets (IPC), not TCP, so they print no warning about
# unencrypted traffic; --allow-root only where the shell is root (Jupyter refuses root otherwise).
LAB := $(BIN)/jupyter lab --notebook-dir=book --LabApp.default_url=/lab/tree/00_overview.ipynb \
	--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	--KernelManager.transport=ipc $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(LAB)

# The kernels compile first, in two processes at once (fraglife warm), instead of one after another in the tests.
test: setup vendor
	$(BIN)/fraglife warm
	$(BIN)/python -m pytest -q

# For changes to the library: every test except chapter execution and sweeps (markers in pyproject.toml).
test-fast: setup vendor
	$(BIN)/fraglife warm
	$(BIN)/python -m pytest -q -m "not chapters and not sweep"

run: setup
	$(BIN)/fraglife run

bench: setup
	$(BIN)/fraglife bench --json

clean:
	rm -rf build

# --- Publishing: offline slides and HTML book (lib/fraglife/publish/) ------------------
# JavaScript and fonts the decks and pages carry (package.json, package-lock.json).
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

vendor: $(NPM_STAMP)

# Execute every written chapter, then one reveal.js deck each: build/slides/NN_name.slides.html;
# then every slide measured in headless Chromium and those that do not fit 1280 x 760 listed.
slides: setup vendor chromium
	$(BIN)/fraglife slides

# Execute every written chapter, then the HTML book: build/html/index.html
book: setup vendor
	$(BIN)/fraglife book

# Both from one execution.
publish: setup vendor
	$(BIN)/fraglife book
	$(BIN)/fraglife slides --no-run

# One conference deck from the executed chapters (cells tagged `talk`), its timing plan and a PDF
# handout, offline: build/talk/ is the folder to copy. MINUTES=40 for another slot (default 25).
talk: setup vendor chromium
	$(BIN)/fraglife talk $(if $(MINUTES),--minutes $(MINUTES))

# The answers of the last build (build/build.json) as a plain-text reply to the thread, 72 columns:
# build/reply/reply.txt. Numbers come from the executed chapters (make run / book / talk), never typed.
reply: setup
	$(BIN)/fraglife reply

# Debian's Chromium, for the talk's handout and the browser tests (installed only if missing; needs root).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Build the real book, decks and talk, then open them in headless Chromium (Playwright) with
# the network blocked; screenshots go to build/screenshots/. Every slide of every deck is measured
# and every chart of the executed chapters checked (units, data that varies); what does not pass
# is listed in build/checks/. A slide that does not fit 1280 x 760 or a chart finding fails the
# target; STRICT_FIT=0 / STRICT_CHARTS=0 only list them, for local work on a slide or a chart (the
# talk refuses a slide that does not fit either way).
STRICT_FIT ?= 1
STRICT_CHARTS ?= 1
test-offline: setup vendor chromium
	$(BIN)/fraglife book
	$(BIN)/fraglife slides --no-run --no-fit
	$(BIN)/fraglife talk --no-run
	FRAGLIFE_CHECK_BUILD=1 FRAGLIFE_STRICT_FIT=$(STRICT_FIT) FRAGLIFE_STRICT_CHARTS=$(STRICT_CHARTS) \
		$(BIN)/python -m pytest -q tests/test_publish_offline.py tests/test_first_screen.py tests/test_charts.py

# JupyterLab started as `make lab` starts it (on a free port, with a token, no browser),
# driven in headless Chromium: chapter 01 run, its control panel changed (tests/test_lab.py).
test-lab: setup chromium
	FRAGLIFE_CHECK_LAB=1 FRAGLIFE_LAB_COMMAND='$(LAB)' $(BIN)/python -m pytest -q tests/test_lab.py
