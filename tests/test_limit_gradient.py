"""Quasi-Newton on the limit scale (``fitting.rside._optimize_limit_gradient``).

``gls`` with compound symmetry (``ScaledCompSymmGram``) or AR(1) and varConstPower has a
gradient that costs a few values, so the log-scale and natural-scale stages run by BFGS instead
of BOBYQA and its restarts. On simulated panels whose constant ends at its limit 0 or
inside, REML and ML, the fit must take that path, pass its convergence check and reach
BOBYQA's optimum (or a better one); and the natural scale's gradient
(``LimitScale.value_and_gradient``) must match central differences, near 0 as well.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.fitting.limit_scale import LimitScale
from mixedmodels.formula import parse_formula
from mixedmodels.rside.objective import GLSObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns

#: The quasi-Newton fit's log-likelihood may trail BOBYQA's by at most this much (both
#: stop on a gradient or step tolerance near the same optimum).
LOGLIK_TOL = 1e-7
#: Central differences (step 1e-6) of a criterion of ~500: rounding ~1e-13 / 1e-6.
FD_TOL = 1e-5
FD_STEP = 1e-6


def _panel(seed: int, const: float, power: float, rho: float = 0.5, g: int = 20,
           m: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(1, m + 1), g).astype(float)
    sd = const + t ** power
    e = np.repeat(rng.normal(size=g), m) * np.sqrt(rho) + \
        rng.normal(size=g * m) * np.sqrt(1.0 - rho)
    x = rng.normal(size=g * m)
    return pd.DataFrame({"y": 5.0 + x + sd * e, "x": x, "t": t,
                         "sub": np.repeat([f"r{i}" for i in range(g)], m)})


def _fit(d, method, optimizer="auto", correlation=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.gls("y ~ x", d,
                      correlation=correlation or mm.cor_comp_symm(form="~ 1 | sub"),
                      variance=mm.var_const_power(form="~ t"), method=method,
                      optimizer=optimizer)


@pytest.mark.parametrize("seed, const, power", [(1, 0.0, 0.7), (5, 0.0, 0.4),
                                                 (6, 1.0, 0.0)])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_quasi_newton_stages_reach_bobyqas_optimum(seed, const, power, method):
    d = _panel(seed, const, power)
    fit = _fit(d, method)
    ref = _fit(d, method, optimizer="bobyqa")
    assert fit.opt.optimizer.startswith("gradient")
    assert fit.convergence.converged
    assert fit.loglik >= ref.loglik - LOGLIK_TOL
    assert fit.var_params["const"] >= 0.0


@pytest.mark.parametrize("seed, const, power", [(2, 0.0, 1.0), (5, 0.0, 0.4)])
def test_markov_correlation_takes_the_same_stages(seed, const, power):
    # AR(1)'s banded cross-products give the gradient at about a value's cost too
    d = _panel(seed, const, power)
    cor = mm.cor_ar1(form="~ t | sub")
    fit = _fit(d, "REML", correlation=cor)
    ref = _fit(d, "REML", optimizer="bobyqa", correlation=cor)
    assert fit.opt.optimizer.startswith("gradient") and fit.convergence.converged
    assert fit.loglik >= ref.loglik - LOGLIK_TOL
    assert fit.opt.n_evals < ref.opt.n_evals


def test_natural_scale_gradient_matches_differences():
    d = _panel(1, 0.0, 0.7)
    spec = ResidualSpec.make(mm.cor_comp_symm(form="~ 1 | sub"),
                             mm.var_const_power(form="~ t"))
    design = materialize(parse_formula("y ~ x"), d, require_random=False,
                         extra_columns=residual_columns(spec))
    obj = GLSObjective(design.X, design.y, bind_residual(spec, design))
    scale = LimitScale(obj, obj.residual.zero_limits)
    assert scale.mask.tolist() == [False, True, False]
    for z in ([0.3, 1e-3, 0.6], [0.3, 2.5, 0.6], [-0.4, 0.05, 1.1]):
        z = np.array(z)
        f, g = scale.value_and_gradient(z)
        assert f == pytest.approx(scale(z), rel=1e-14)
        num = np.array([(scale(z + FD_STEP * e) - scale(z - FD_STEP * e)) / (2 * FD_STEP)
                        for e in np.eye(z.size)])
        assert np.max(np.abs(g - num)) <= FD_TOL * max(1.0, np.max(np.abs(num)))
