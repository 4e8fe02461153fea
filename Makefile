# BeTrace Distribution task runner. `make help` lists the targets.
# Every target sets up what it needs: a local virtualenv (.venv) and the external tools (.tools).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(BIN):$(PATH)
export NO_MKDOCS_2_WARNING := 1

.DEFAULT_GOAL := help
.PHONY: help serve test gate ledger build lint bench tools setup clean checkov backend

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[tests]'
	touch $@

setup: $(STAMP) ## create .venv with the site and test dependencies

AXE := tests/browser/node_modules/axe-core/axe.min.js

tools: $(STAMP) $(AXE) backend ## fetch the external tools the gate runs (helm 4 and 3, kubectl) into .tools/bin
	$(BIN)/python -m betrace_dist.tools install

backend: $(STAMP) ## build the real betrace-backend from upstream's snapshot (../shared/upstream) into .cache/
	$(BIN)/python -m betrace_dist.upstream backend

# axe-core for the accessibility checks, pinned by the lock file (needs npm; skipped without it)
$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/browser --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility checks will be skipped (and fail in CI)"; fi

checkov: $(STAMP) ## create .venv-checkov with the pinned checkov (the second security scanner CI runs)
	$(BIN)/python -m betrace_dist.artefacts.checkov install

serve: $(STAMP) ## serve the site locally with live reload on http://127.0.0.1:8000/distribution/
	$(BIN)/mkdocs serve --strict

build: $(STAMP) ## build the site into site/ (strict, offline)
	$(BIN)/mkdocs build --strict

test: tools ## run every test: engine, artefacts, site build and the doc gate (pytest docs/)
	$(BIN)/pytest -n 2 --dist=loadfile $(PYTEST_ARGS)

gate: tools ## run only the doc gate on docs/ (PAGE=docs/x.md for one page)
	$(BIN)/pytest $(or $(PAGE),docs) $(PYTEST_ARGS)

ledger: $(STAMP) ## print the block ledger: every block of every page and its checker
	$(BIN)/betrace-dist ledger

lint: $(STAMP) ## ruff on the engine, macros, tests and benchmarks; mypy on the engine (src/)
	$(BIN)/ruff check src macros tests benchmarks docs/conftest.py
	$(BIN)/ruff format --check src macros tests benchmarks docs/conftest.py
	$(BIN)/mypy

bench: tools ## time the gate on a fresh clone, as ratios to baselines (benchmarks/README.md)
	$(BIN)/python benchmarks/bench_site.py $(or $(BENCH_ARGS),--runs 2)

clean: ## remove the virtualenv, the tools and build output
	rm -rf $(VENV) .venv-checkov .tools .cache site
