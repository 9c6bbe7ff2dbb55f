# make demo: run the sample shop with traffic; make test: run the whole test suite.
# Each target creates .venv and installs what it needs; `make test` also installs the Debian
# packages the tests start (chromium, prometheus) when missing, as root or with password-less
# sudo, else stops at once with the one command to run (tools/ensure-system-deps.sh).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test system-deps lint bench clean

# setup.py compiles analyzers/anomaly.py (mypyc): an edit to it needs a new build
$(VENV)/.installed: pyproject.toml setup.py analyzers/anomaly.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# setuptools leaves the build's metadata here; a process started in the checkout would
	# find the package's entry points twice (the install's own are in the venv)
	rm -rf otel_monitoring.egg-info
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/otel-monitoring demo

system-deps:
	bash tools/ensure-system-deps.sh

test: system-deps $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check otel_monitoring analyzers tests benchmarks setup.py
	$(VENV)/bin/ruff format --check otel_monitoring analyzers tests benchmarks setup.py
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV)
