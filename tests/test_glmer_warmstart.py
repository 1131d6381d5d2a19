"""Warm starts of glmer's nAGQ = 0 stage (issue 10): the predicted joint modes and the trust
radius of the quasi-Newton phase change the path only, never the criterion or the fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.optim import minimize_with_gradient

#: The nAGQ = 0 criterion from either start: PIRLS converges to the same joint modes.
SAME_CRITERION = 1e-10


def _sim(seed: int, n_g: int = 40, n_h: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_g, 800)
    h = rng.integers(0, n_h, 800)
    x = rng.normal(2.0, 1.5, 800)
    eta = 0.4 + 0.3 * x + 0.7 * rng.standard_normal(n_g)[g] + 0.4 * rng.standard_normal(n_h)[h]
    return pd.DataFrame({"cnt": rng.poisson(np.exp(eta)), "x": x,
                         "g": [f"G {k}" for k in g], "h": [f"h_{k}" for k in h]})


def _objective(formula, data, family):
    fam = make_family(family, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = glmm_design(formula, data, fam)
    return GLMMObjective(design, fam, 1)


@pytest.mark.parametrize("formula, family, data", [
    ("cnt ~ x + (1 | g) + (1 | h)", "poisson", _sim(3)),
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial",
     mm.datasets.load("cbpp")),
])
def test_predicted_joint_start_keeps_the_criterion(formula, family, data):
    obj = _objective(formula, data, family)
    rng = np.random.default_rng(11)
    # a path like an optimizer's: small and large moves, and a return near the start
    path = [np.full(obj.n_theta, 1.0)]
    for scale in (0.3, 0.02, 0.5, 0.01, 0.001, 0.2, 0.003):
        path.append(np.maximum(path[-1] * np.exp(scale * rng.standard_normal(obj.n_theta)),
                               0.05))
    warm = [obj.stage0(t) for t in path]
    assert obj.pirls._ref0 is not None           # the prediction was in use
    it_warm = obj.pirls.n_iter_total
    cold_obj = _objective(formula, data, family)
    cold_obj.pirls.predict = False
    cold = [cold_obj.stage0(t) for t in path]
    np.testing.assert_allclose(warm, cold, rtol=SAME_CRITERION)
    assert it_warm <= cold_obj.pirls.n_iter_total


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
    # every evaluated point was within the radius of an earlier one
    for k in range(1, len(seen)):
        gap = np.min(np.max(np.abs(np.array(seen[:k]) - seen[k]), axis=1))
        assert gap <= 1.0 + 1e-12
