"""The trust radius of the quasi-Newton phase of glmer's nAGQ = 0 stage (issue 10): it changes
the path only, never the optimum or the fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.fitting import glmm as glmm_fitting
from mixedmodels.optim import minimize_with_gradient

#: Deviance of the fit with and without the radius (optimizer tolerance, not rounding).
SAME_FIT = 1e-7


def test_trust_radius_changes_the_path_not_the_optimum():
    # a quadratic in log theta whose optimum (theta = e^4, 0.5) is beyond one step's radius
    target = np.array([4.0, np.log(0.5)])

    def fg(x):
        z = np.log(x) - target
        return float(z @ z), 2.0 * z / x

    seen = []

    def tracked(x):
        seen.append(np.log(x).copy())
        return fg(x)

    x0 = np.ones(2)
    free, _, _ = minimize_with_gradient(fg, x0, np.zeros(2))
    capped, _, _ = minimize_with_gradient(tracked, x0, np.zeros(2), max_log_step=1.0)
    np.testing.assert_allclose(capped.x, free.x, rtol=1e-6)
    np.testing.assert_allclose(capped.x, np.exp(target), rtol=1e-6)
    # every evaluated point was within the radius of an earlier one (without the radius
    # the first step jumps 2.3)
    for k in range(1, len(seen)):
        gap = np.min(np.max(np.abs(np.array(seen[:k]) - seen[k]), axis=1))
        assert gap <= 1.0 + 1e-12


def test_glmer_fit_unchanged_by_the_radius(monkeypatch):
    rng = np.random.default_rng(5)
    n_g = 300
    g = np.repeat(np.arange(n_g), 5)
    x = rng.standard_normal(g.size)
    eta = -0.3 + 0.5 * x + 0.8 * rng.standard_normal(n_g)[g] \
        + 0.4 * rng.standard_normal(n_g)[g] * x
    df = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                       "grp": [f"g{k}" for k in g]})
    capped = mm.glmer("y ~ x + (x || grp)", df, family="binomial")
    monkeypatch.setattr(glmm_fitting, "STAGE0_MAX_LOG_STEP", None)
    free = mm.glmer("y ~ x + (x || grp)", df, family="binomial")
    assert abs(capped.deviance - free.deviance) <= SAME_FIT * abs(free.deviance)
