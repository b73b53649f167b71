"""Builds the compiled core (Cython). Everything else is in pyproject.toml.

Knobs (environment variables at build time):
    BOOKENGINE_PURE=1   build nothing: the package runs on the pure-Python reference.
    BOOKENGINE_DEBUG=1  bounds checks, assertions, -O0 -g: for sanitizers and debuggers.
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
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for source in sorted(CORE.glob("*.pyx"))
    ]
    return cythonize(modules, compiler_directives=directives, quiet=True)


setup(ext_modules=extensions())
