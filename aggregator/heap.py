"""Python's cyclic garbage collector, set for one batch of work (a cron run).

CPython collects its youngest generation every 700 allocations of container objects,
and now and then looks through every object the process holds. A run allocates
hundreds of thousands (every item parsed, folded and written) that live until it ends,
while the modules, classes and compiled patterns it imported never become garbage: in a
cold run of 200 feeds, collections took 85 to 120 ms of the main thread, which every
other step waits on (docs/benchmarks.md, issue 14, thirteenth pass).

:func:`batch` collects the young generation every :data:`YOUNG` allocations instead,
and leaves what exists when the batch starts out of every collection (``gc.freeze``);
the parser workers, forked during the run, inherit both. Garbage in cycles is still
collected, a little later; memory freed by reference counting (most of it) is freed
as ever. When the batch ends, both settings are put back (a freeze made before it is
kept).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between collections of the youngest generation (CPython's default: 700).
YOUNG = 10_000


@contextmanager
def batch() -> Iterator[None]:
    """Collect less often while the block runs (see the module)."""
    young, middle, old = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(max(young, YOUNG), middle, old)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)
        if not frozen:  # a caller's own freeze is kept (it cannot be told apart)
            gc.unfreeze()
