# The only entry points a newcomer needs: run, test, bench, setup.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
SIM_PORT ?= 8765
# Local development defaults; real deployments set these in the environment.
export DJANGO_DEBUG ?= 1

.PHONY: setup run test bench bench-peers lint format

$(VENV)/bin/python:
	@python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else "Python 3.13 is needed (see .python-version); found " + sys.version.split()[0])'
	python -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/python requirements.txt requirements-dev.txt requirements-build.txt requirements-nodeps.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# The compiled core, in place next to its source (setup.py says what to install without a compiler).
CORE := markets/core/_book$(shell python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)

$(CORE): $(VENV)/.installed markets/core/_book.pyx setup.py
	$(PY) setup.py --quiet build_ext --inplace

setup: $(VENV)/.installed $(CORE)
	@mkdir -p var staticfiles
	$(PY) manage.py migrate --no-input
	$(PY) manage.py createcachetable

run: setup
	$(PY) manage.py seed_demo
	$(PY) manage.py run_desk --host $(HOST) --port $(PORT) --sim-port $(SIM_PORT)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DATABASE_CONN_MAX_AGE=0 $(VENV)/bin/pytest

# The peers (bench/peers.py) install into their own venvs under var/bench/venvs on first use.
bench: setup
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench

bench-peers: setup
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench peers

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
