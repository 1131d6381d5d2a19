"""Simulated Toeplitz models near the wall: the glmmtmb engine with and without the
continuation of fitting/glmmtmb_wall, against glmer (Poisson) / lmer ML (Gaussian).
Prints seed, p, term, family, new, old, reference, new - min(old, reference); numbers in
benchmarks/results/toep_notes.md. Run: OPENBLAS_NUM_THREADS=1 python benchmarks/toep_wall_sim.py"""
import sys, warnings, itertools, json
import numpy as np, pandas as pd
import mixedmodels as mm
import importlib; gt = importlib.import_module("mixedmodels.fitting.glmmtmb")
warnings.simplefilter("ignore")
def sim(seed, p, fam, n_sub=30):
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(range(p), range(p)))
    c = np.r_[1, 0.6 * 0.7 ** np.arange(1, p) * np.where(np.arange(1, p) % 3 == 2, -1, 1)]
    R = c[lag]; R += 0.05*np.eye(p); R /= 1.05
    b = rng.multivariate_normal(np.zeros(p), 0.5 * R, size=n_sub)
    rows = []
    for s in range(n_sub):
        for t in range(p):
            x = rng.normal(); eta = 0.3 + 0.5 * x + b[s, t]
            y = rng.poisson(np.exp(eta)) if fam == "poisson" else eta + rng.normal() * 0.5
            rows.append((f"s{s:02d}", t, x, y))
    return pd.DataFrame(rows, columns=["subject", "time", "x", "y"])
def tmb(form, d, fam, hook):
    old = gt.has_wall
    if not hook: gt.has_wall = lambda obj: False
    try:
        return mm.glmmtmb(form, d, family=fam).objective
    except Exception as e:
        return np.nan
    finally:
        gt.has_wall = old
rows = []
for seed, p, kw, fam in itertools.product(range(3), (4, 6, 8), ("toep", "homtoep"), ("poisson", "gaussian")):
    d = sim(100 * seed + p, p, fam)
    form = f"y ~ x + {kw}(0 + factor(time) | subject)"
    new, old = tmb(form, d, fam, True), tmb(form, d, fam, False)
    try:
        ref = (mm.glmer(form, d, family="poisson").objective if fam == "poisson"
               else mm.lmer(form, d, REML=False).objective)
    except Exception as e:
        ref = np.nan
    rows.append((seed, p, kw, fam, new, old, ref, new - np.nanmin([old, ref])))
    print(*rows[-1], flush=True)
