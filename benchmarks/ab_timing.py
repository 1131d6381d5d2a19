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


#: Cases outside the fixtures: name -> (the fixture whose data they fit, call text).
#: gls fits the fixtures lack (no residual model; a correlation held at a value), for the
#: fixed costs of the closed-form path (benchmarks/results/glsfix3_notes.md).
EXTRA_CASES = {
    "bw_gls_plain": ("bw_gls_fixed", "mm.gls('weight ~ Time * Diet', d)"),
    "bw_gls_held_car1": ("bw_gls_fixed", "mm.gls('weight ~ Time * Diet', d, correlation="
                                         "mm.cor_car1(0.9, form='~ Time | Rat', fixed=True))"),
}


def rside_fit(package, name: str) -> Callable[[], object]:
    """``() -> result`` fitting the gls / lme fixture ``name`` of tests/rside_fixtures (or
    an :data:`EXTRA_CASES` entry) with ``package``; the call text is evaluated at every
    fit, as rside_bench does, so the formula-to-design front end is timed too."""
    sys.path.insert(0, str(ROOT / "tests"))
    import rside_fixtures as rf

    from .rside_bench import timing_data

    source, call = EXTRA_CASES.get(name, (name, None))
    fx = {f["name"]: f for kind in ("gls", "lme") for f in rf.models(kind)}[source]
    data = timing_data(fx)
    code = compile(call or fx["py_call"], name, "eval")
    return lambda: eval(code, {"mm": package, "d": data})
