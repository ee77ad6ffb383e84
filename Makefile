# The two commands of certsas: `make demo` and `make test`. Both install what they
# need on first run (a virtual environment, Azurite from npm) and are quick after.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INFRA_VENV := .venv-infra

.PHONY: demo test test-fast lint typecheck bench package deploy clean deps lock

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "certsas needs Python 3.11 or newer")'
	@echo "==> installing Python dependencies into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing Azurite from npm into node_modules"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: deps
	@$(BIN)/python scripts/demo.py

lint: deps
	@$(BIN)/ruff check .

typecheck: deps
	@$(BIN)/mypy

test: deps lint typecheck $(INFRA_VENV)/.requirements-infra.sha256
	@$(BIN)/pytest

# checkov for the infra suite, in an environment of its own (its pins clash with the app's).
# tests/integration/test_infra.py would build it as well, but silently inside pytest; here
# a first `make test` says what the half-minute is for. The stamp is the one that test reads.
$(INFRA_VENV)/.requirements-infra.sha256: requirements-infra.txt | $(VENV)/.installed
	@echo "==> installing checkov into $(INFRA_VENV) for the infra suite (once; up to a minute)"
	@test -x $(INFRA_VENV)/bin/python || $(BIN)/python -m venv $(INFRA_VENV)
	@$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	@$(BIN)/python -c 'import hashlib, pathlib; print(hashlib.sha256(pathlib.Path("requirements-infra.txt").read_bytes()).hexdigest(), end="")' > $@

# The suites that start no process and open no socket: seconds, not minutes.
test-fast: deps
	@$(BIN)/pytest tests/unit

# dist/certsas.zip: the app and its Linux dependencies, nothing else (SPEC §7). It needs
# Python with pip, and git: not Node.js (Azurite is for the tests) and not the dev venv, so
# `make deploy` and azd's hook run on a bare build agent. PYTHON_VERSION is the app's Python
# (infra's pythonVersion: 3.11 or 3.12); the wheels are for that ABI, whatever runs the build.
# azd's hook gets the deployed value from main.bicep's PYTHON_VERSION output, which azd puts
# in the hook's environment, and make takes from there.
PYTHON_VERSION ?= 3.12
package:
	@$(PYTHON) scripts/build_package.py --python-version "$(PYTHON_VERSION)"

clean:
	rm -rf $(VENV) .venv-lock .venv-infra .venv-worker node_modules .mypy_cache .ruff_cache .pytest_cache dist .dev

bench: deps
	@$(BIN)/python -m bench.run

# make deploy RG=<resource group> APP=<function app name>
# Builds dist/certsas.zip (make package) and ships it the one documented way: upload to the
# deployment container, restart, sync triggers (scripts/deploy.sh, docs/deploy.md). azd's
# postprovision hook runs this same target.
deploy: package
	@test -n "$(RG)" -a -n "$(APP)" || { echo "usage: make deploy RG=<resource group> APP=<function app>"; exit 2; }
	@scripts/deploy.sh "$(RG)" "$(APP)"

# make lock: re-resolve requirements.in and requirements-dev.in against PyPI into the
# hash-locked requirements.txt (shipped in the package) and requirements-dev.txt (make deps),
# and requirements-client.in into requirements-client.txt (a partner's certsas.client).
# LOCK_ARGS="--upgrade-package cryptography" bumps one package and keeps the other pins.
# pip-tools lives in its own .venv-lock: it pins pip itself, which the dev lock should not.
# This machine's pip configuration (extra indexes, find-links) is ignored on purpose, so the
# hashes are PyPI's, for every file of each release.
LOCK_VENV  := .venv-lock
LOCK_INDEX ?= https://pypi.org/simple
LOCK_ARGS  ?= --upgrade
PIP_COMPILE = env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
	PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links --index-url $(LOCK_INDEX) $(LOCK_ARGS)

lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { \
		echo "==> installing pip-tools into $(LOCK_VENV)"; \
		$(PYTHON) -m venv $(LOCK_VENV) && \
		env PIP_CONFIG_FILE=/dev/null $(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check \
			--index-url $(LOCK_INDEX) pip-tools==7.6.2; }
	@echo "==> locking requirements.in into requirements.txt (with hashes; takes a minute or two)"
	@$(PIP_COMPILE) --output-file requirements.txt requirements.in
	@echo "==> locking requirements-dev.in into requirements-dev.txt"
	@$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
	@echo "==> locking requirements-client.in into requirements-client.txt (certsas.client alone)"
	@$(PIP_COMPILE) --output-file requirements-client.txt requirements-client.in
