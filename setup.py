"""The bridge's compiled core (bridge/_native.c). Everything else is in pyproject.toml.

The extension is optional: where no C compiler is at hand (an sdist on a bare machine),
the build prints one line and goes on, and the bridge runs its pure-Python reference.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "promflux.bridge._native", sources=["bridge/_native.c"], optional=True,
    # (Ryu, vendored: included by _native.c, not compiled on its own)
    depends=[f"bridge/ryu/{name}" for name in (
        "d2s.c", "common.h", "digit_table.h", "d2s_intrinsics.h", "d2s_full_table.h", "ryu.h")],
    # (the C API's stable parts only; the module is rebuilt per Python version)
    extra_compile_args=[] if __import__("sys").platform == "win32" else ["-O2"],
)])
