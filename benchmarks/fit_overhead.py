"""Why a small fit takes longer in the corpus protocol than in a tight loop.

``python -m benchmarks.fit_overhead --case sleepstudy_reml [--case cbpp_laplace] [--fits N]``

Fits one row of the benchmark table (``benchmarks/models.toml``) in this process under
four conditions and prints, per condition, the median fit time -- CPU
(:func:`time.process_time`, every thread of the process) and wall
(:func:`time.perf_counter`) -- and the median time outside the optimizer (fit less the
optimizer's own seconds, :func:`~benchmarks.engines.opt_summary`), in milliseconds:

``loop``
    fits back to back, as a tight timing loop runs them;
``gc``
    a full :func:`gc.collect` right before each fit, outside the timed region: what
    ``benchmarks/worker.py`` (and ``benchmarks/r/time_lme4.R`` with R's ``gc()``) does;
``frozen``
    the same collection after :func:`gc.freeze` (the objects alive after the warm-up --
    the imported modules -- are left out of every later collection, which then traverses
    only what the fits left behind);
``evict``
    no collection, but a 64 MB array summed before each fit: the CPU caches are emptied
    without the collector's walk over the heap.

A full collection walks every tracked object of the process (~120,000 after importing
the package, pandas, scipy and formulaic: 0.1 s), and the fit that follows finds the
caches and the TLB filled with the collector's traversal instead of its own code and
data: ``gc`` against ``frozen`` is the cost of that, ``evict`` the part a plain cache
eviction explains. The conditions alternate fit by fit, so load drifts reach each alike.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import warnings

import numpy as np

from .engines import ENGINES, load_data, opt_summary
from .table import TABLE_PATH, load_table

__all__ = ["CONDITIONS", "main", "measure"]

#: Untimed fits before any timing (imports, caches, the interpreter's specialization).
WARMUP_FITS = 10
#: Bytes summed by the ``evict`` condition: several times any last-level cache.
EVICT_BYTES = 64 * 2**20
CONDITIONS = ("loop", "gc", "frozen", "evict")


def _prepare(condition: str, evict: np.ndarray) -> None:
    if condition == "gc":
        gc.collect()
    elif condition == "frozen":
        gc.freeze()
        gc.collect()
        gc.unfreeze()
    elif condition == "evict":
        evict.sum()


def measure(case_name: str, fits: int) -> dict[str, dict[str, float]]:
    """Median CPU, wall and outside-the-optimizer milliseconds per condition."""
    table = load_table(TABLE_PATH)
    case = table.get(case_name)
    fit = ENGINES[case.engine]
    data = load_data(table, case.data)
    evict = np.ones(EVICT_BYTES // 8)
    times: dict[str, list[tuple[float, float, float]]] = {c: [] for c in CONDITIONS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(WARMUP_FITS):
            fit(case, data)
        for _ in range(fits):
            for condition in CONDITIONS:
                _prepare(condition, evict)
                c0, w0 = time.process_time(), time.perf_counter()
                result = fit(case, data)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                times[condition].append((cpu, wall, wall - opt_summary(result).seconds))
    return {
        c: {
            "cpu_ms": 1e3 * statistics.median(t[0] for t in rows),
            "wall_ms": 1e3 * statistics.median(t[1] for t in rows),
            "outside_optimizer_ms": 1e3 * statistics.median(t[2] for t in rows),
        }
        for c, rows in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--case", action="append", required=True, help="benchmark table row (repeatable)"
    )
    ap.add_argument("--fits", type=int, default=40, help="timed fits per condition")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}; median ms of {args.fits} fits per condition")
    print(f"{'case':24s} {'condition':9s} {'cpu':>8s} {'wall':>8s} {'outside opt':>12s}")
    for name in args.case:
        for condition, row in measure(name, args.fits).items():
            print(
                f"{name:24s} {condition:9s} {row['cpu_ms']:8.3f} {row['wall_ms']:8.3f} "
                f"{row['outside_optimizer_ms']:12.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
