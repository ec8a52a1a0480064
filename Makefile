# Tunelab: `make run` sets up and starts the platform with its demo; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run test lint bench-detection clean

venv: $(STAMP)

# torch==2.13.0 first: on the project's machines it is a CPU build on disk; a looser request
# would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup
	bash scripts/serve.sh

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

bench-detection: venv
	$(PY) -m trainer bench detection

clean:
	rm -rf var runs .pytest_cache .ruff_cache
