"""Builds the compiled core (`markets/core/_book.pyx`) in place: `make setup` runs it.

Needs Cython (requirements-build.txt) and a C compiler with the Python headers.
"""

import os
import shutil
import sys
import sysconfig

from setuptools import Extension, setup

# What setuptools will run: $CC when set, else the compiler Python was built with.
compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
if shutil.which(compiler.split()[0]) is None:
    sys.exit(
        f"The compiled core needs a C compiler ({compiler!r} was not found): install one, e.g. "
        "`apt-get install gcc` (Debian/Ubuntu) or `xcode-select --install` (macOS), then run "
        "`make setup` again."
    )

headers = os.path.join(sysconfig.get_paths()["include"], "Python.h")
if not os.path.exists(headers):
    sys.exit(
        f"The compiled core needs the Python headers ({headers} is missing): install them, e.g. "
        "`apt-get install python3-dev` (Debian/Ubuntu), then run `make setup` again."
    )

from Cython.Build import cythonize  # noqa: E402  (after the compiler check, to say it first)

setup(
    name="arbsite-core",
    packages=[],
    ext_modules=cythonize(
        [Extension("markets.core._book", ["markets/core/_book.pyx"], extra_compile_args=["-O2"])],
        compiler_directives={"language_level": 3},
    ),
)
