# The README's commands. Each target creates its own virtualenv and builds the extension.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint build clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "setuptools>=77" wheel "Cython>=3.0" "numpy>=1.26"
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test,lint]"
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]" --no-build-isolation
	touch $(BENCH_STAMP)

build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace -j 2

demo: build
	$(PY) -m bookengine demo

test: build
	$(PY) -m pytest -q
	BOOKENGINE_PURE=1 $(PY) -m pytest -q tests/test_implementation.py

bench: build $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

lint: build
	$(VENV)/bin/ruff check bookengine tests bench examples
	$(VENV)/bin/ruff format --check bookengine tests bench examples
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint bookengine/_core

clean:
	rm -rf build $(VENV) bookengine/_core/*.c bookengine/_core/*.so bookengine/_core/*.html
