# The README's commands. Each target creates its own virtualenv and builds the extension.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint build clean fuzz asan memcheck soak

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "setuptools>=77" wheel "Cython>=3.0,<4" "numpy>=1.26"
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

# -- hardening (issue 8): fuzzing, sanitizers, soak. Instrumented builds go out of place
# (build/<variant>/lib, used through PYTHONPATH) so the in-place extension stays a normal one.
HARDENING_STAMP := $(VENV)/.hardening-installed
$(HARDENING_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --no-build-isolation -e ".[hardening]"
	touch $(HARDENING_STAMP)

FUZZ_SECONDS ?= 60
# Every target in fuzz/ for FUZZ_SECONDS each (clang + ASan + libFuzzer coverage of the C code
# when clang is there; FUZZ_ARGS="--no-native" for Python coverage only).
fuzz: $(HARDENING_STAMP)
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

SANITIZED_TESTS ?= tests/test_*.py tests/l3 tests/hardening
# The core-heavy tests on a debug (-O0 -g, bounds checks) AddressSanitizer build. CPython's own
# allocations are never freed at exit, hence detect_leaks=0 (leaks: see bench/bench_memory.py).
asan: $(HARDENING_STAMP)
	BOOKENGINE_DEBUG=1 BOOKENGINE_ASAN=1 $(PY) setup.py --quiet build \
		--build-base build/asan --build-lib build/asan/lib -j 2
	PYTHONPATH=build/asan/lib:$(CURDIR) LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 PYTHONMALLOC=malloc BOOKENGINE_SANITIZER=asan \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests/hardening/test_sanitizer_build.py \
		$(SANITIZED_TESTS)

MEMCHECK_TESTS ?= tests/hardening/test_memcheck_subset.py
# valgrind memcheck on a debug build (slow: a subset); definite leaks in the core fail too.
memcheck: $(HARDENING_STAMP)
	BOOKENGINE_DEBUG=1 BOOKENGINE_C_DIR=build/debug/c $(PY) setup.py --quiet build \
		--build-base build/debug --build-lib build/debug/lib -j 2
	$(PY) tests/hardening/memcheck.py --lib build/debug/lib \
		tests/hardening/test_sanitizer_build.py $(MEMCHECK_TESTS)

SOAK_SECONDS ?= 300
# The live feed against the simulator with seeded random faults for SOAK_SECONDS.
soak: build $(HARDENING_STAMP)
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)
