"""A small shared thread pool for kernels whose work splits into independent blocks.

numpy releases the GIL inside its loops, so blocks of a depthwise conv run on all cores. Each
block is computed exactly as it would be alone, so results do not depend on the thread count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

#: Threads used (EDGEEXPORT_REFERENCE_THREADS). One by default: on a loaded machine extra threads
#: next to BLAS's own pool oversubscribe the cores and cost far more than they save.
THREADS = max(1, int(os.environ.get("EDGEEXPORT_REFERENCE_THREADS", "1")))
_pool: ThreadPoolExecutor | None = None


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
