"""Simulated Toeplitz models near the wall: the glmmtmb engine with and without the
continuation of fitting/glmmtmb_wall, against glmer (Poisson) / lmer ML (Gaussian).
Prints seed, p, term, family, new, old, reference, new - min(old, reference); numbers in
benchmarks/results/toep_notes.md. Run: OPENBLAS_NUM_THREADS=1 python benchmarks/toep_wall_sim.py
"""
import importlib
import itertools
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm

gt = importlib.import_module("mixedmodels.fitting.glmmtmb")


def sim(seed: int, p: int, fam: str = "poisson", n_sub: int = 30) -> pd.DataFrame:
    """``n_sub`` subjects at ``p`` times; random effects with an alternating-sign lag
    pattern close to the edge of the Toeplitz domain (shrunk 5% towards the identity)."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(range(p), range(p)))
    c = np.r_[1, 0.6 * 0.7 ** np.arange(1, p) * np.where(np.arange(1, p) % 3 == 2, -1, 1)]
    R = c[lag]
    R += 0.05 * np.eye(p)
    R /= 1.05
    b = rng.multivariate_normal(np.zeros(p), 0.5 * R, size=n_sub)
    rows = []
    for s in range(n_sub):
        for t in range(p):
            x = rng.normal()
            eta = 0.3 + 0.5 * x + b[s, t]
            y = rng.poisson(np.exp(eta)) if fam == "poisson" else eta + rng.normal() * 0.5
            rows.append((f"s{s:02d}", t, x, y))
    return pd.DataFrame(rows, columns=["subject", "time", "x", "y"])


def _engine(form: str, d: pd.DataFrame, fam: str, continuation: bool) -> float:
    """The glmmtmb objective, with or without the wall continuation (NaN on failure)."""
    old = gt.has_wall
    if not continuation:
        gt.has_wall = lambda obj: False
    try:
        return mm.glmmtmb(form, d, family=fam).objective
    except Exception:
        return np.nan
    finally:
        gt.has_wall = old


def main() -> None:
    warnings.simplefilter("ignore")
    grid = itertools.product(range(3), (4, 6, 8), ("toep", "homtoep"), ("poisson", "gaussian"))
    for seed, p, kw, fam in grid:
        d = sim(100 * seed + p, p, fam)
        form = f"y ~ x + {kw}(0 + factor(time) | subject)"
        new, old = _engine(form, d, fam, True), _engine(form, d, fam, False)
        try:
            ref = (mm.glmer(form, d, family="poisson").objective if fam == "poisson"
                   else mm.lmer(form, d, REML=False).objective)
        except Exception:
            ref = np.nan
        print(seed, p, kw, fam, new, old, ref, new - np.nanmin([old, ref]), flush=True)


if __name__ == "__main__":
    main()
