"""Timing two versions of a fit against each other on a shared machine.

The A/B scripts (``fixcost_ab``, ``rsidesmall_ab``) fit the same case with this checkout and
with a renamed copy of another commit. Each version runs short batches in turn, timed with
:func:`time.process_time`, and the fastest batch counts: short alternating batches and the
minimum find the quiet moments of a machine that other jobs share, and both versions see
the same moments.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["fastest_batches", "rside_fit"]

ROOT = Path(__file__).resolve().parents[1]


def fastest_batches(fits: Mapping[str, Callable[[], object]], batches: int,
                    reps: int) -> dict[str, float]:
    """Seconds per call of each ``fits[key]()``, the fastest of ``batches`` batches of ``reps``."""
    best = dict.fromkeys(fits, float("inf"))
    for _ in range(batches):
        for key, fit in fits.items():
            t0 = time.process_time()
            for _ in range(reps):
                fit()
            best[key] = min(best[key], (time.process_time() - t0) / reps)
    return best


def rside_fit(package, name: str) -> Callable[[], object]:
    """``() -> result`` fitting the gls / lme fixture ``name`` of tests/rside_fixtures with
    ``package``; the fixture's call text is evaluated at every fit, as rside_bench does, so
    the formula-to-design front end is timed too."""
    sys.path.insert(0, str(ROOT / "tests"))
    import rside_fixtures as rf

    from .rside_bench import timing_data

    fx = {f["name"]: f for kind in ("gls", "lme") for f in rf.models(kind)}[name]
    data = timing_data(fx)
    code = compile(fx["py_call"], name, "eval")
    return lambda: eval(code, {"mm": package, "d": data})
