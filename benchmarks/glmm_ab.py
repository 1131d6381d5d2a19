"""In-process A/B of warm small-GLMM fits against another copy of the package.

``OPENBLAS_NUM_THREADS=1 PYTHONPATH=DIR python -m benchmarks.glmm_ab --other NAME
--row cbpp_laplace --row cbpp_nagq0``

The GLMM sibling of :mod:`benchmarks.small_lmm_ab`: ``DIR/NAME`` is a copy of
``src/mixedmodels`` from another commit, renamed (its imports are relative, so it loads as
a second package beside this one). Both fit each ``benchmarks/models.toml`` row named
(glmer / glmer_nb engines) in alternating short batches timed with
:func:`time.process_time`; the minimum over the batches is printed per version, with the
objective and the largest relative difference of the standard errors (they should agree).
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings

import numpy as np

import mixedmodels as mm

from .engines import load_data
from .table import load_table


def _fitter(pkg, case):
    if case.engine == "glmer_nb":
        return lambda data: pkg.glmer_nb(case.formula, data, **case.options)
    return lambda data: pkg.glmer(case.formula, data, case.family, **case.options)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True)
    ap.add_argument("--fits", type=int, default=10)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--row", action="append", required=True)
    args = ap.parse_args()
    other = importlib.import_module(args.other)
    warnings.simplefilter("ignore")
    table = load_table()
    for name in args.row:
        case = table.get(name)
        data = load_data(table, case.data)
        fits = {"other": _fitter(other, case), "this": _fitter(mm, case)}
        best = dict.fromkeys(fits, float("inf"))
        res = {}
        for key, fit in fits.items():
            for _ in range(3):
                res[key] = fit(data)
        for _ in range(args.batches):
            for key, fit in fits.items():
                t0 = time.process_time()
                for _ in range(args.fits):
                    fit(data)
                best[key] = min(best[key], (time.process_time() - t0) / args.fits)
        se = [np.sqrt(np.diag(np.asarray(res[k].vcov_beta))) for k in fits]
        dse = float(np.max(np.abs(se[1] / se[0] - 1.0)))
        print(f"{name:22s} other {best['other'] * 1e3:8.3f} ms  this {best['this'] * 1e3:8.3f}"
              f" ms ({best['this'] / best['other'] - 1:+.1%})  obj "
              f"{res['other'].objective!r} {res['this'].objective!r}  dSE {dse:.1e}",
              flush=True)


if __name__ == "__main__":
    main()
