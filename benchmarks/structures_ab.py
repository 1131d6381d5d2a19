"""In-process A/B of warm fits of the structures fixtures against another copy of the
package.

``OPENBLAS_NUM_THREADS=1 PYTHONPATH=DIR python -m benchmarks.structures_ab --other NAME
--row propto_pois:glmmtmb --row propto_pois:glmer``

The structures sibling of :mod:`benchmarks.glmm_ab`: ``DIR/NAME`` is a copy of
``src/mixedmodels`` from another commit, renamed. Both fit each fixture of
tests/fixtures/structures by the door named (``glmmtmb``, ``glmer`` or ``lmer``) in
alternating short batches timed with :func:`time.process_time`; the minimum over the
batches is printed per version, with the objective and the largest relative difference of
the standard errors of the fixed effects.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import mixedmodels as mm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import structures_fixtures as sf


def _fitter(pkg, fx: dict, door: str, matrices: dict):
    kw = {"covariance_matrices": matrices}
    if door == "glmmtmb":
        return lambda data: pkg.glmmtmb(fx["formula"], data, family=fx["family"],
                                        REML=fx["REML"], dispformula=fx["dispformula"],
                                        **kw)
    if door == "lmer":
        return lambda data: pkg.lmer(fx["formula"], data, REML=fx["REML"], **kw)
    return lambda data: pkg.glmer(fx["formula"], data, family=fx["family"], **kw)


def _se(res) -> np.ndarray:
    v = res.vcov_beta if hasattr(res, "vcov_beta") else res.fit.vcov
    return np.sqrt(np.diag(np.asarray(v, dtype=float)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True)
    ap.add_argument("--fits", type=int, default=10)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--row", action="append", required=True, help="fixture:door")
    args = ap.parse_args()
    other = importlib.import_module(args.other)
    warnings.simplefilter("ignore")
    matrices = sf.known_matrices()
    for row in args.row:
        fid, door = row.split(":")
        fx = sf.load(fid)
        data = sf.load_data(fx)
        fits = {"other": _fitter(other, fx, door, matrices),
                "this": _fitter(mm, fx, door, matrices)}
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
        try:
            se = [_se(res[k]) for k in fits]
            dse = f"{float(np.max(np.abs(se[1] / se[0] - 1.0))):.1e}"
        except (AttributeError, TypeError, ValueError):
            dse = "n/a"
        print(f"{row:24s} other {best['other'] * 1e3:7.3f} ms  this "
              f"{best['this'] * 1e3:7.3f} ms ({best['this'] / best['other'] - 1:+.1%})  "
              f"dobj {res['this'].objective - res['other'].objective:+.1e}  dSE {dse}",
              flush=True)


if __name__ == "__main__":
    main()
