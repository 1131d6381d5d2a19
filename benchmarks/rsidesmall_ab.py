"""In-process A/B of the R-side rows (gls and lme) against another copy of the package.

``OPENBLAS_NUM_THREADS=1 PYTHONPATH=DIR python -m benchmarks.rsidesmall_ab --other NAME
[--case hetero_lme_constpower ...] [--fits 5] [--batches 30]``

As :mod:`benchmarks.fixcost_ab` (alternating short batches timed with
:func:`time.process_time`, the minimum per version), for any fixture of
tests/fixtures/rside of kind ``gls`` or ``lme``; prints each version's CPU per fit, its
evaluations and its log-likelihood.
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from pathlib import Path

from .ab_timing import fastest_batches
from .ab_timing import rside_fit as _fit

ROOT = Path(__file__).resolve().parents[1]

#: The rows of benchmarks/results/rside.md under 5x nlme at the start of the rsidesmall lane.
CASES = ("bw_gls_fixed", "hetero_lme_constpower", "ovary_gls_arma11", "bw_gls_ratio",
         "hetero_gls_constpower", "serial_lme_arma11", "serial_gls_arma11_ident")



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True)
    ap.add_argument("--fits", type=int, default=5)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--case", action="append")
    args = ap.parse_args()
    other = importlib.import_module(args.other)
    import mixedmodels as mm

    warnings.simplefilter("ignore")
    for name in args.case or CASES:
        fits = {"other": _fit(other, name), "this": _fit(mm, name)}
        info = {}
        for key, fit in fits.items():
            for _ in range(3):
                r = fit()
            opt = getattr(r, "opt", None)
            info[key] = (getattr(opt, "n_evals", None), r.loglik)
        best = fastest_batches(fits, args.batches, args.fits)
        print(f"{name:24s} other {best['other'] * 1e3:7.3f} ms  this {best['this'] * 1e3:7.3f}"
              f" ms ({best['this'] / best['other'] - 1:+.1%})  evals {info['other'][0]} -> "
              f"{info['this'][0]}  loglik {info['other'][1]!r} {info['this'][1]!r}", flush=True)


if __name__ == "__main__":
    main()
