# BeTrace Distribution task runner. `make help` lists the targets.
# Every target sets up what it needs: a local virtualenv (.venv) and the external tools (.tools).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(BIN):$(PATH)
export NO_MKDOCS_2_WARNING := 1

.DEFAULT_GOAL := help
.PHONY: help serve test check gate ledger build build-zensical lint bench tools setup clean checkov lock
.PHONY: backend system-deps plugin plugin-build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The Python packages install at the versions of constraints.txt (written by `make lock`): a
# fresh clone gets what the suite last passed with, and a new release of a dependency reaches
# the project only through a change of that file, which CI then tests.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[tests,backend]' \
	  || { echo "make setup: pip could not install the locked versions; if it names a conflict with constraints.txt, pyproject.toml asks for versions the lock lacks: run make lock"; exit 1; }
	touch $@

LOCK_VENV := .cache/lock-venv
# CI's Python: a lock written on another one could miss what only CI's needs
LOCK_PYTHON := 3.11
lock: ## write constraints.txt (and checkov's, constraints-checkov.txt) anew: the newest versions allowed, from scratch virtualenvs
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LOCK_PYTHON)".split("."))))' \
	  || { echo "make lock: run it with Python $(LOCK_PYTHON), CI's (PYTHON=python$(LOCK_PYTHON) make lock)"; exit 1; }
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[tests,backend,publish]'
	{ printf '%s\n' '# Written by `make lock` from pyproject.toml; `make setup` installs these versions.' \
	  '# Do not edit: run `make lock` again, then the tests (docs/contributing/decisions.md).'; \
	  $(LOCK_VENV)/bin/pip --version | awk '{print "pip==" $$2}'; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > $(LOCK_VENV)/constraints.txt
	cmp -s $(LOCK_VENV)/constraints.txt constraints.txt || cp $(LOCK_VENV)/constraints.txt constraints.txt
	$(LOCK_VENV)/bin/python -m betrace_dist.artefacts.checkov lock
	rm -rf $(LOCK_VENV)

setup: $(STAMP) ## create .venv with the site and test dependencies

AXE := tests/browser/node_modules/axe-core/axe.min.js
# esbuild, Effect, React 19 and jsdom for the Grafana app's tests (tests/plugin), pinned by its lock
PLUGIN_NODE := tests/plugin/node_modules/.package-lock.json

tools: $(STAMP) $(AXE) $(PLUGIN_NODE) backend ## fetch the external tools the gate runs (helm 4 and 3, kubectl) into .tools/bin
	$(BIN)/python -m betrace_dist.tools install

backend: $(STAMP) ## build the real betrace-backend from upstream's snapshot (../shared/upstream) into .cache/
	$(BIN)/python -m betrace_dist.upstream backend

# axe-core for the accessibility checks, pinned by the lock file (needs npm; skipped without it)
$(AXE): tests/browser/package-lock.json | system-deps
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/browser --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility checks will be skipped (and fail in CI)"; fi

system-deps: ## install the system programs of the tool registry (bwrap, nix, chromium, node, npm, strace...) as root with apt; otherwise list them
	scripts/install-system-deps
$(PLUGIN_NODE): tests/plugin/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/plugin --no-audit --no-fund --silent; \
	else echo "npm not found: the Grafana app's tests will be skipped (and fail in CI)"; fi

plugin-build: $(STAMP) ## build the patched Grafana app once per key (snapshot, patches, pins) into .cache/plugin-build/<key>/dist
	$(BIN)/python -m betrace_dist.plugin_build build

plugin: plugin-build $(PLUGIN_NODE) ## build the patched Grafana app (if its key is not built yet), then test it
	$(BIN)/pytest tests/plugin -q $(PYTEST_ARGS)

checkov: $(STAMP) ## create .venv-checkov with the pinned checkov (the second security scanner CI runs)
	$(BIN)/python -m betrace_dist.artefacts.checkov install

serve: $(STAMP) ## serve the site locally with live reload on http://127.0.0.1:8000/distribution/
	$(BIN)/mkdocs serve --strict

build: $(STAMP) ## build the site into site/ (strict, offline)
	$(BIN)/mkdocs build --strict

# Zensical reads a configuration generated from mkdocs.yml (never edited by hand; see
# docs/contributing/building-with-zensical.md), rewritten before every build.
build-zensical: $(STAMP) ## build the site with Zensical instead of MkDocs into site/ (strict)
	$(BIN)/python -m betrace_dist.site.zensical_config
	$(BIN)/zensical build --strict --config-file zensical.yml

test: system-deps tools ## run every test: engine, artefacts, site build and the doc gate (pytest docs/)
	$(BIN)/pytest -n 2 --dist=loadfile $(PYTEST_ARGS)

# The inner loop: the engine's unit tests (no site build, no sandbox-heavy suites) and one page
# that goes through the renderer, the shell checker and the Compose and curl models.
CHECK_TESTS := tests/test_lexer.py tests/test_render.py tests/test_tools.py \
	tests/test_import_graph.py tests/test_grafana_chart.py tests/test_names.py \
	tests/test_contract.py tests/test_command_lines.py
CHECK_PAGE  := docs/guides/deploy-with-docker-compose.md

check: $(STAMP) ## fast inner loop (~1 min on 2 cores, no tool downloads; the virtualenv's set-up installs from PyPI once): lint, engine unit tests, one page
	$(BIN)/ruff check src macros tests benchmarks docs/conftest.py
	$(BIN)/ruff format --check src macros tests benchmarks docs/conftest.py
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q --no-live $(CHECK_TESTS) $(CHECK_PAGE) $(PYTEST_ARGS)

gate: tools ## run only the doc gate on docs/ (PAGE=docs/x.md for one page)
	$(BIN)/pytest $(or $(PAGE),docs) $(PYTEST_ARGS)

ledger: $(STAMP) ## print the block ledger: every block of every page and its checker
	$(BIN)/betrace-gate ledger

lint: $(STAMP) ## ruff on the engine, macros, tests and benchmarks; mypy on the engine (src/)
	$(BIN)/ruff check src macros tests benchmarks docs/conftest.py
	$(BIN)/ruff format --check src macros tests benchmarks docs/conftest.py
	$(BIN)/mypy

bench: tools ## time the gate on a fresh clone, as ratios to baselines (benchmarks/README.md)
	$(BIN)/python benchmarks/bench_site.py $(or $(BENCH_ARGS),--runs 2)

clean: ## remove the virtualenv, the tools and build output
	rm -rf $(VENV) .venv-checkov .tools .cache site zensical.yml
