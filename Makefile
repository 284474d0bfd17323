# cmokg — two commands do all the setup: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STORE  ?= var/store
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install build serve test lint typecheck pytest qc clean reference

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml node_modules/.installed
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Front-end packages (the YASGUI editor, cytoscape for the CMOC network) come from the npm registry at setup,
# pinned by package-lock.json; the web app serves them from node_modules under /assets/.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

build: install
	$(BIN)/cmokg build --store $(STORE)

serve: build
	$(BIN)/cmokg serve --store $(STORE) --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

# The whole chain, as ODK does it: lint, types, then pytest (ontology parses and is consistent under HermiT,
# shapes parse, the seed graph builds and conforms, catalog queries answer, QC queries return nothing).
test: lint typecheck pytest

# docs/reference.md lists every route, catalog query, CLI command and config key (tests/test_docs_claims.py checks it)
reference: install
	$(BIN)/python docs/make_reference.py

clean:
	rm -rf var test-artefacts .pytest_cache .mypy_cache .ruff_cache
