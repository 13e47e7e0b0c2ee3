"""Pick OpenBLAS's AVX-512 kernels on CPUs that have AVX-512 but that numpy's OpenBLAS does not
recognise (it then falls back to its AVX2 "Haswell" kernels, ~1.7x slower for the GEMMs of the
reference runtime). Must run before numpy is imported; a user's own OPENBLAS_CORETYPE wins.
"""

from __future__ import annotations

import os
import platform
import sys

_AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def has_avx512() -> bool:
    """True on Linux x86-64 CPUs with the AVX-512 subsets OpenBLAS's SkylakeX kernels use."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return False
    return _AVX512 <= set(flags)


def prefer_avx512_kernels() -> str | None:
    """Set OPENBLAS_CORETYPE=SkylakeX when safe; returns what it set, else None."""
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules or not has_avx512():
        return None
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    return "SkylakeX"
