"""In-process A/B of warm small-LMM fits against another copy of the package.

``OPENBLAS_NUM_THREADS=1 PYTHONPATH=DIR python -m benchmarks.small_lmm_ab --other NAME``

``DIR/NAME`` is a copy of ``src/mixedmodels`` from another commit, renamed (its imports
are relative, so it loads as a second package beside this one). Both fit each model of
:data:`benchmarks.small_lmm_bench.MODELS` in alternating short batches, timed with
:func:`time.process_time`; the minimum over the batches is printed per version (short
batches and the minimum find the quiet moments of a shared, loaded machine), with the
criterion of each (they should agree).
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings

import mixedmodels as mm

from .small_lmm_bench import MODELS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True)
    ap.add_argument("--fits", type=int, default=20)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--model", action="append")
    args = ap.parse_args()
    other = importlib.import_module(args.other)
    warnings.simplefilter("ignore")
    for name in args.model or list(MODELS):
        data, formula, reml = MODELS[name]
        df = mm.datasets.load(data)
        fits = {"other": other.lmer, "this": mm.lmer}
        best = dict.fromkeys(fits, float("inf"))
        crit = {}
        for key, fit in fits.items():
            for _ in range(20):
                crit[key] = fit(formula, df, REML=reml).opt.fval
        for _ in range(args.batches):
            for key, fit in fits.items():
                t0 = time.process_time()
                for _ in range(args.fits):
                    fit(formula, df, REML=reml)
                best[key] = min(best[key], (time.process_time() - t0) / args.fits)
        print(f"{name:12s} other {best['other'] * 1e6:8.1f} us  this {best['this'] * 1e6:8.1f} us"
              f"  ({best['this'] / best['other'] - 1:+.1%})  crit {crit['other']!r} "
              f"{crit['this']!r}")


if __name__ == "__main__":
    main()
