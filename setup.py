"""The bridge's compiled core (bridge/_native.c). Everything else is in pyproject.toml.

The extension is optional: where no C compiler is at hand (an sdist on a bare machine),
the build prints one line and goes on, and the bridge runs its pure-Python reference.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "promflux.bridge._native", sources=["bridge/_native.c"], optional=True,
    # (the C API's stable parts only; the module is rebuilt per Python version)
    extra_compile_args=[] if __import__("sys").platform == "win32" else ["-O2"],
)])
