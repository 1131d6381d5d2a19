"""glmer on simulated Toeplitz Poisson models near the wall (the data of
benchmarks/toep_wall_sim.py, seeds 0-3, p = 4, 6, 8, toep and homtoep): glmer now (the
route, the wall optimum, or the two stages), the two stages alone and the glmmtmb engine.
Prints seed, p, term, glmer, two stages, engine, glmer - engine, how glmer ended, CPU of
glmer and of the two stages; numbers in benchmarks/results/toepwall_notes.md.
Run: OPENBLAS_NUM_THREADS=1 python benchmarks/toepwall_sim.py"""
import itertools
import time
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm
import mixedmodels.fitting.glmm as glmm_module

warnings.simplefilter("ignore")


def sim(seed, p, n_sub=30):
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
            rows.append((f"s{s:02d}", t, x, rng.poisson(np.exp(0.3 + 0.5 * x + b[s, t]))))
    return pd.DataFrame(rows, columns=["subject", "time", "x", "y"])


def cpu(fun):
    t0 = time.process_time()
    out = fun()
    return out, time.process_time() - t0


route = glmm_module.takes_structured_route
for seed, p, kw in itertools.product(range(4), (4, 6, 8), ("toep", "homtoep")):
    d = sim(100 * seed + p, p)
    form = f"y ~ x + {kw}(0 + factor(time) | subject)"
    g, tg = cpu(lambda: mm.glmer(form, d, family="poisson"))
    glmm_module.takes_structured_route = lambda *a: False
    try:
        two, t2 = cpu(lambda: mm.glmer(form, d, family="poisson"))
    finally:
        glmm_module.takes_structured_route = route
    eng = mm.glmmtmb(form, d, family="poisson").objective
    how = ("wall" if "wall" in g.opt.optimizer else
           "route" if g.opt.optimizer.startswith("glmmtmb engine") else "two stages")
    print(seed, p, kw, f"{g.objective:.6f} {two.objective:.6f} {eng:.6f} "
          f"{g.objective - eng:.2e}", how, f"{tg:.3f} {t2:.3f}", flush=True)
