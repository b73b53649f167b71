"""Builds the compiled core (Cython). Everything else is in pyproject.toml.

Knobs (environment variables at build time):
    BOOKENGINE_PURE=1   build nothing: the package runs on the pure-Python reference.
    BOOKENGINE_DEBUG=1  bounds checks, assertions, -O0 -g: for sanitizers and debuggers.
    BOOKENGINE_ASAN=1   AddressSanitizer (-fsanitize=address -fno-omit-frame-pointer); run
                        python with LD_PRELOAD=$(gcc -print-file-name=libasan.so) (`make asan`).
    BOOKENGINE_FUZZ=1   clang with -fsanitize=fuzzer-no-link: libFuzzer coverage of the C code
                        for the atheris targets in fuzz/ (`make fuzz`). Needs clang.

    BOOKENGINE_C_DIR=d  write the generated C under d instead of next to the .pyx.

    With ASAN or FUZZ the generated C goes to build/<variant>/c by default (cythonize does not
    notice changed directives, so a variant must never reuse the C of another). Build these
    variants out of place (`setup.py build --build-base build/<variant> --build-lib
    build/<variant>/lib`, as `make asan`/`memcheck`/`fuzz` do): an in-place ASan .so cannot be
    imported without the preload, and would break everyone else's `import bookengine`.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

CORE = Path("bookengine") / "_core"


def extensions() -> list:
    if os.environ.get("BOOKENGINE_PURE") == "1":
        return []
    import numpy
    from Cython.Build import cythonize

    debug = os.environ.get("BOOKENGINE_DEBUG") == "1"
    compile_args = ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3"]
    link_args: list[str] = []
    variant = []
    if os.environ.get("BOOKENGINE_ASAN") == "1":
        sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer"]
        compile_args += [*sanitize, "-g"]
        link_args += sanitize
        variant.append("asan")
    if os.environ.get("BOOKENGINE_FUZZ") == "1":
        # libFuzzer's inline counters and comparison hooks; the runtime comes from the preload
        # fuzz/run.py builds from atheris's libFuzzer.
        os.environ.setdefault("CC", "clang")
        os.environ.setdefault("LDSHARED", "clang -shared")
        compile_args += ["-fsanitize=fuzzer-no-link", "-g"]
        link_args += ["-fsanitize=fuzzer-no-link"]
        variant.append("fuzz")
    build_dir = os.environ.get("BOOKENGINE_C_DIR") or None
    # cythonize does not regenerate C when only directives change: a debug (bounds-checked) or
    # instrumented build must never reuse the C of another, so each gets its own directory.
    if (variant or debug) and build_dir is None:
        variant.append("debug" if debug else "release")
        build_dir = str(Path("build") / "-".join(variant) / "c")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "initializedcheck": debug,
        "cdivision": True,
        "embedsignature": True,
    }
    modules = [
        Extension(
            f"bookengine._core.{source.stem}",
            [str(source)],
            include_dirs=[numpy.get_include(), str(CORE)],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for source in sorted(CORE.glob("*.pyx"))
    ]
    return cythonize(modules, compiler_directives=directives, quiet=True, build_dir=build_dir)


setup(ext_modules=extensions())
