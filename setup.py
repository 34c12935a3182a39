"""The optional C extension of the masker (xtok.run._hsmask), over Hyperscan's C library.

Everything else is in pyproject.toml. Without Hyperscan's headers (Debian: libhyperscan-dev or
libvectorscan-dev) the build skips the extension and xtok masks with the Python bindings.
"""

import shutil
import subprocess

from setuptools import Extension, setup


def hyperscan_flags() -> tuple[list[str], list[str]]:
    """Include and library directories from pkg-config, if it knows libhs."""
    if shutil.which("pkg-config"):
        found = subprocess.run(
            ["pkg-config", "--cflags-only-I", "--libs-only-L", "libhs"],
            capture_output=True,
            text=True,
        )
        if found.returncode == 0:
            flags = found.stdout.split()
            return [f[2:] for f in flags if f.startswith("-I")], [
                f[2:] for f in flags if f.startswith("-L")
            ]
    return ["/usr/include/hs"], []


includes, libdirs = hyperscan_flags()
setup(
    ext_modules=[
        Extension(
            "xtok.run._hsmask",
            ["src/xtok/run/_hsmask.c"],
            include_dirs=includes,
            library_dirs=libdirs,
            libraries=["hs"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
