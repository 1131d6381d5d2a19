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
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The rows of benchmarks/results/rside.md under 5x nlme at the start of the rsidesmall lane.
CASES = ("bw_gls_fixed", "hetero_lme_constpower", "ovary_gls_arma11", "bw_gls_ratio",
         "hetero_gls_constpower", "serial_lme_arma11", "serial_gls_arma11_ident")


def _fixture(name: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import rside_fixtures as rf

    return {f["name"]: f for kind in ("gls", "lme") for f in rf.models(kind)}[name]


def _fit(package, name: str):
    """``() -> result`` fitting fixture ``name`` with ``package`` (the call text evaluated
    at every fit, as benchmarks/rside_bench.py does)."""
    from benchmarks.rside_bench import timing_data

    fx = _fixture(name)
    data = timing_data(fx)
    code = compile(fx["py_call"], name, "eval")
    return lambda: eval(code, {"mm": package, "d": data})


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
        best = dict.fromkeys(fits, float("inf"))
        info = {}
        for key, fit in fits.items():
            for _ in range(3):
                r = fit()
            opt = getattr(r, "opt", None)
            info[key] = (getattr(opt, "n_evals", None), r.loglik)
        for _ in range(args.batches):
            for key, fit in fits.items():
                t0 = time.process_time()
                for _ in range(args.fits):
                    fit()
                best[key] = min(best[key], (time.process_time() - t0) / args.fits)
        print(f"{name:24s} other {best['other'] * 1e3:7.3f} ms  this {best['this'] * 1e3:7.3f}"
              f" ms ({best['this'] / best['other'] - 1:+.1%})  evals {info['other'][0]} -> "
              f"{info['this'][0]}  loglik {info['other'][1]!r} {info['this'][1]!r}", flush=True)


if __name__ == "__main__":
    main()
