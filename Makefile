# Two commands on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the test suite uses as real peers and servers.
DEBS := sip-tester baresip baresip-core postgresql sox espeak-ng tshark chromium chromium-driver firefox-esr kamailio
PYTEST_ARGS ?=

.PHONY: run test install debs lint unit postgres-tests bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

debs:
	@bash scripts/install-debs.sh $(DEBS)

run: $(STAMP)
	$(PY) -m gateway

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check -q .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Whole suite on the embedded SQLite default, then every database test again on a real
# PostgreSQL server started on 127.0.0.1 by scripts/with-postgres.sh and stopped after.
test: $(STAMP) debs lint
	$(PY) -m pytest $(PYTEST_ARGS)
	bash scripts/with-postgres.sh $(PY) -m pytest -m db $(PYTEST_ARGS)

# Every benchmark, one after the other; rewrites the figures section of docs/benchmarks.md.
bench: $(STAMP) debs
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gateway.db
