"""Run simulation replicates reproducibly, in parallel over processes, with progress.

A *task* turns a replicate number ``i`` into a vector (simulate a response from random
stream ``i``, refit, evaluate a statistic). :func:`run_replicates` runs ``nsim`` of them
sequentially or on ``n_jobs`` worker processes; because replicate ``i`` always draws from
stream ``i`` (:mod:`~mixedmodels.inference.simulate`), the results do not depend on
``n_jobs`` or on the order in which workers finish. A replicate that raises is recorded as
failed (replicate number and message) and the others are kept.

Workers are forked where the platform allows it, so the task -- which holds the fitted
model and possibly a lambda -- reaches them without pickling; elsewhere the task must be
picklable.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from .._errors import MixedModelsWarning
from .._messages import collecting, quiet, user_stacklevel
from ..display.progress import PROGRESS_AFTER_SECONDS, progress_bar

__all__ = ["PROGRESS_AFTER_SECONDS", "ParallelWarning", "ReplicateRun", "run_replicates"]
#: Chunks per worker: small enough to balance load and report progress, large enough that
#: the per-chunk overhead (a few ms) does not matter.
CHUNKS_PER_JOB = 8

class ParallelWarning(MixedModelsWarning):
    """Replicates could not be run in worker processes and ran in one process."""


#: The task of the run in progress, read by forked workers (set only around a run).
_TASK = None


@dataclass(frozen=True)
class ReplicateRun:
    """Raw outcome of a run.

    Attributes
    ----------
    values : list
        Per replicate, the task's value, or None where it failed.
    failures : tuple of (int, str)
        Replicate number and error message of each failed replicate.
    warnings : dict of str -> int
        Number of replicates that raised each warning category (singular fits, ...).
    seconds : float
    """

    values: list
    failures: tuple
    warnings: dict
    seconds: float


def _run_one(task, i: int):
    # the replicate's own warnings: counted per category, not printed (a thousand
    # singular-fit warnings would bury the result); a collector and a quiet flag in the
    # context rather than warnings.catch_warnings, which is process-global and would mix
    # up replicates (or user fits) running in other threads
    with collecting() as caught, quiet():
        try:
            value, err = task(i), None
        except Exception as exc:  # a failed replicate is data, not a crash
            value, err = None, f"{type(exc).__name__}: {exc}"
    return i, value, err, caught.categories()


def _run_chunk(indices, task=None):
    task = _TASK if task is None else task
    return [_run_one(task, i) for i in indices]


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def _fork_available() -> bool:
    return "fork" in mp.get_all_start_methods() and sys.platform != "darwin"


def run_replicates(task, nsim: int, n_jobs: int = 1, progress=None,
                   label: str = "bootstrap") -> ReplicateRun:
    """Evaluate ``task(i)`` for ``i = 0 .. nsim - 1``.

    Parameters
    ----------
    task : callable
        ``i -> value`` (anything numpy can turn into a 1-d array).
    nsim : int
    n_jobs : int
        Worker processes; 1 runs in this process, -1 uses every core.
    progress : bool or None
        Progress bar (:mod:`mixedmodels.display.progress`: tqdm when installed): always
        (True), never (False), or for long runs that someone watches (None).
    """
    global _TASK
    if nsim < 1:
        raise ValueError(f"nsim must be a positive number of replicates, got {nsim}")
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1 (or -1 for every core), got {n_jobs}")
    bar = progress_bar(nsim, progress, label)
    t0 = time.perf_counter()
    results = []
    if n_jobs > 1 and not _fork_available() and not _picklable(task):
        warnings.warn(
            "worker processes cannot be forked on this platform and the task (the fitted "
            "model and statistic) cannot be pickled for them: running in one process; pass "
            "a module-level function as the statistic to use n_jobs > 1 here",
            ParallelWarning, stacklevel=user_stacklevel())
        n_jobs = 1
    if n_jobs == 1 or nsim == 1:
        step = max(1, nsim // 100)
        for start in range(0, nsim, step):
            results.extend(_run_chunk(range(start, min(nsim, start + step)), task))
            bar.update(len(results))
    else:
        size = max(1, -(-nsim // (n_jobs * CHUNKS_PER_JOB)))
        chunks = [range(s, min(nsim, s + size)) for s in range(0, nsim, size)]
        forked = _fork_available()
        ctx = mp.get_context("fork" if forked else "spawn")
        _TASK = task if forked else None
        try:
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
                futures = [pool.submit(_run_chunk, c, None if forked else task)
                           for c in chunks]
                for fut in as_completed(futures):
                    results.extend(fut.result())
                    bar.update(len(results))
        finally:
            _TASK = None
    bar.close()
    results.sort(key=lambda r: r[0])
    values = [r[1] for r in results]
    failures = tuple((r[0], r[2]) for r in results if r[2] is not None)
    counts: dict[str, int] = {}
    for r in results:
        for c in r[3]:
            counts[c] = counts.get(c, 0) + 1
    return ReplicateRun(values, failures, counts, time.perf_counter() - t0)


def stack_values(values: list) -> tuple[np.ndarray, np.ndarray]:
    """(matrix of the successful replicates' values, their replicate numbers)."""
    ok = [i for i, v in enumerate(values) if v is not None]
    if not ok:
        return np.zeros((0, 0)), np.zeros(0, dtype=int)
    rows = [np.atleast_1d(np.asarray(values[i], dtype=float)) for i in ok]
    return np.vstack(rows), np.asarray(ok)
