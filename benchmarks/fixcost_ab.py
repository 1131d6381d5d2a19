"""In-process A/B of warm small fits -- lmer and gls -- against another copy of the package.

``OPENBLAS_NUM_THREADS=1 PYTHONPATH=DIR python -m benchmarks.fixcost_ab --other NAME
[--case sleep_reml --case bw_gls_fixed ...] [--fits 10] [--batches 60]``

``DIR/NAME`` is a copy of ``src/mixedmodels`` from another commit, renamed (its imports are
relative, so it loads as a second package beside this one; see
:mod:`benchmarks.small_lmm_ab`). Each case is fitted by both versions in alternating short
batches timed with :func:`time.process_time`; the minimum over the batches is printed per
version (short batches and the minimum find the quiet moments of a shared machine), with
each version's criterion (they should agree to the last digit).

Cases: the small LMMs of :data:`benchmarks.small_lmm_bench.MODELS` and the small ``gls``
rows of ``benchmarks/rside_bench.py`` (the fixture's call text evaluated at every fit, on
the fixture's data with its factor columns made categoricals once, as that benchmark does).
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from pathlib import Path

import mixedmodels as mm

from .ab_timing import fastest_batches
from .ab_timing import rside_fit as _gls_fit
from .small_lmm_bench import MODELS

ROOT = Path(__file__).resolve().parents[1]

#: The gls rows whose time is mostly outside the optimizer's evaluations.
GLS_CASES = ("bw_gls_fixed", "bw_gls_power_time", "orth_gls_ident_ml", "bw_gls_varexp",
             "ovary_gls_ar1")



def _lmer_fit(package, name: str):
    data_name, formula, reml = MODELS[name]
    data = mm.datasets.load(data_name)
    return lambda: package.lmer(formula, data, REML=reml)


def _criterion(result) -> float:
    opt = getattr(result, "opt", None)
    return opt.fval if opt is not None else result.loglik


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True)
    ap.add_argument("--fits", type=int, default=10)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--case", action="append")
    args = ap.parse_args()
    other = importlib.import_module(args.other)
    warnings.simplefilter("ignore")
    for name in args.case or ["sleep_reml", *GLS_CASES]:
        make = _lmer_fit if name in MODELS else _gls_fit
        fits = {"other": make(other, name), "this": make(mm, name)}
        crit = {}
        for key, fit in fits.items():
            for _ in range(20):
                crit[key] = _criterion(fit())
        best = fastest_batches(fits, args.batches, args.fits)
        print(f"{name:18s} other {best['other'] * 1e6:8.1f} us  this {best['this'] * 1e6:8.1f}"
              f" us  ({best['this'] / best['other'] - 1:+.1%})  crit {crit['other']!r} "
              f"{crit['this']!r}")


if __name__ == "__main__":
    main()
