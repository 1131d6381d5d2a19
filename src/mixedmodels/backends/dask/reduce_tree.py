"""A map-reduce over the partitions of a Dask DataFrame, on Dask's scheduler.

Each partition's result comes from ``chunk(partition, index, *args)``; results are combined in a
tree, ``split_every`` at a time, by ``combine(list_of_results)``. The graph is built from
``dask.delayed`` calls, so the active scheduler runs it (dask.distributed's when a client
is active: its workers compute the chunks, and retry a task whose worker died). Only the
final combined value comes back to the client.
"""

from __future__ import annotations

from .source import require_dask

__all__ = ["SPLIT_EVERY", "map_reduce"]

#: Partition results combined per tree node: bounds the memory of one combine step to a
#: few reduced systems while keeping the tree shallow.
SPLIT_EVERY = 8


def map_reduce(frame, chunk, combine, *args, split_every: int = SPLIT_EVERY):
    """``combine`` over ``chunk(partition, index, *args)`` of every partition of ``frame``
    (``index``: the partition's position); ``combine([x])`` must equal ``x``. ``frame``
    may also be a list of delayed objects (partitions persisted in another form)."""
    dask, _ = require_dask()
    from dask import delayed
    from dask.delayed import Delayed

    shared = [a if isinstance(a, Delayed | str | int | float | bool | None) else delayed(a)
              for a in args]
    parts = frame.to_delayed() if hasattr(frame, "to_delayed") else frame
    level = [delayed(chunk)(part, i, *shared) for i, part in enumerate(parts)]
    while len(level) > 1:
        level = [delayed(combine)(level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    (out,) = dask.compute(level[0])
    return out
