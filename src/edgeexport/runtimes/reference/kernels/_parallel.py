"""The reference runtime's threads: a small pool for kernels whose work splits into blocks, and
the same limit on numpy's BLAS pool while the reference runs.

numpy releases the GIL inside its loops, so blocks of a depthwise conv run on all cores. Each
block is computed exactly as it would be alone, so results do not depend on the thread count.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ContextManager, Iterable, TypeVar

T = TypeVar("T")

#: Threads used (EDGEEXPORT_REFERENCE_THREADS). One by default: on a loaded machine extra threads
#: next to BLAS's own pool oversubscribe the cores and cost far more than they save.
THREADS = max(1, int(os.environ.get("EDGEEXPORT_REFERENCE_THREADS", "1")))
_pool: ThreadPoolExecutor | None = None
_blas: Any = None


def parallel_map(fn: Callable[[T], None], items: Iterable[T]) -> None:
    """Call fn on every item, spread over the pool (in the caller's thread when single)."""
    global _pool
    items = list(items)
    if THREADS <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="edgeexport-reference")
    for future in [_pool.submit(fn, item) for item in items]:
        future.result()  # re-raises a block's exception here


def blas_limit() -> ContextManager[Any]:
    """Holds numpy's BLAS to THREADS threads (with threadpoolctl, when it is installed).

    On a machine with more runnable threads than cores, OpenBLAS's fork-join GEMMs wait for a
    descheduled worker at every call: measured on 2 shared cores, MobileNetV2 took 50-800 ms
    with 2 BLAS threads against 15 ms with 1.
    """
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas = False
        else:
            _blas = ThreadpoolController().select(user_api="blas")
    return _blas.limit(limits=THREADS) if _blas else contextlib.nullcontext()
