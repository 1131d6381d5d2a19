"""The R-side LMM gradient through the dense cross-product (rside/dense_gradient.py).

Compound symmetry and AR(1) / CAR(1) without a variance function (the closed-form
cross-products' ``vjp``), and variance functions or prior weights without a correlation
(``ScaledRowsGram``), compound symmetry with a variance function (``ScaledCompSymmGram``
on the dense rows): the gradient against central differences of the criterion and
against the independent whitening gradient (``_whitened_value_and_gradient``), REML, ML
and a known sigma, unequal groups, irregular times, a negative AR(1) parameter. Fits with
4 parameters take quasi-Newton on it and reach BOBYQA's optimum.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.fitting.rside import LMM_GRADIENT_MIN_PARAMS, LMM_GRAM_GRADIENT_MIN_PARAMS
from mixedmodels.formula import parse_formula
from mixedmodels.rside.dense_gradient import ScaledRowsGram
from mixedmodels.rside.dense_gram import DenseCompSymmGram, DenseMarkovGram
from mixedmodels.rside.objective import RSideLMMObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns
from mixedmodels.rside.scaled_cs_gram import ScaledCompSymmGram

#: Agreement with central differences (step 1e-6), relative to the largest entry.
FD_TOL = 1e-6
FD_STEP = 1e-6
#: Agreement of the two analytic gradients (the same derivative by two routes: rounding).
PATHS_TOL = 1e-9
#: A quasi-Newton fit's log-likelihood may trail BOBYQA's by at most this much.
LOGLIK_TOL = 1e-6


def _panel(seed=5):
    rng = np.random.default_rng(seed)
    g, m = 12, 6
    d = pd.DataFrame({"sub": np.repeat([f"s{i:02d}" for i in range(g)], m),
                      "t": np.tile(np.arange(m), g).astype(float),
                      "x": rng.normal(size=g * m) + 3.0, "z": rng.uniform(0.5, 3.0, g * m),
                      "grp": rng.choice(["a", "b", "c"], g * m),
                      "w": rng.uniform(0.5, 2.0, g * m)})
    d = d.drop(index=[4, 20, 21, 40]).reset_index(drop=True)         # unequal groups
    # a few distinct gaps (CAR(1)'s lag classes)
    d["tt"] = d["t"] * 1.5 + (d.index % 3 == 0) * 0.5
    u = np.repeat(rng.normal(size=g), m)[d.index] * 2.0
    d["y"] = 100.0 + 2.0 * d.x + u + rng.normal(size=len(d)) * d.z
    return d


def _objective(d, formula, cor, var, reml=True, sigma=None, weights=None):
    spec = ResidualSpec.make(cor, var, sigma)
    design = materialize(parse_formula(formula), d, weights=weights,
                         extra_columns=residual_columns(spec))
    return RSideLMMObjective(design, bind_residual(spec, design), reml=reml)


CASES = [
    ("y ~ x + (x | sub)", mm.cor_comp_symm(form="~ 1 | sub"), None, DenseCompSymmGram),
    ("y ~ x + (1 | sub)", mm.cor_comp_symm(form="~ 1 | sub"), None, DenseCompSymmGram),
    ("y ~ x + (x | sub)", mm.cor_ar1(form="~ t | sub"), None, DenseMarkovGram),
    ("y ~ x + (1 | sub)", mm.cor_car1(form="~ tt | sub"), None, DenseMarkovGram),
    ("y ~ x + (x | sub)", None, mm.var_exp(form="~ z"), ScaledRowsGram),
    ("y ~ x + (1 | grp) + (1 | sub)", None, mm.var_ident(form="~ 1 | grp"),
     ScaledRowsGram),
    ("y ~ x + (x || sub)", None, [mm.var_ident(form="~ 1 | grp"),
                                  mm.var_power(form="~ z")], ScaledRowsGram),
    ("y ~ x + (x | sub)", mm.cor_comp_symm(form="~ 1 | sub"), mm.var_power(form="~ z"),
     ScaledCompSymmGram),
    ("y ~ x + (1 | sub)", mm.cor_comp_symm(form="~ 1 | sub"),
     mm.var_ident(form="~ 1 | grp"), ScaledCompSymmGram),
]


def _point(obj, seed):
    return obj.x0 + np.random.default_rng(seed).normal(scale=0.3, size=obj.x0.size)


@pytest.mark.parametrize("formula, cor, var, plan", CASES,
                         ids=[f"{c[0]}-{c[3].__name__}" for c in CASES])
@pytest.mark.parametrize("reml, sigma, weights", [(True, None, None), (False, None, "w"),
                                                   (True, 1.3, None)])
def test_gradient_matches_differences_and_the_whitening(formula, cor, var, plan, reml,
                                                        sigma, weights):
    d = _panel()
    obj = _objective(d, formula, cor, var, reml, sigma, weights)
    assert obj.gram_gradient and isinstance(obj._gradient_plan(), plan)
    for seed in (1, 2):
        x = _point(obj, seed)
        f, g = obj.value_and_gradient(x)
        assert f == pytest.approx(obj(x), rel=1e-12, abs=1e-10)
        f0, g0 = obj._whitened_value_and_gradient(x)
        scale = max(1.0, float(np.max(np.abs(g0))))
        assert f == pytest.approx(f0, rel=1e-12, abs=1e-10)
        assert np.max(np.abs(g - g0)) <= PATHS_TOL * scale, (g, g0)
        num = np.array([(obj(x + FD_STEP * e) - obj(x - FD_STEP * e)) / (2 * FD_STEP)
                        for e in np.eye(x.size)])
        assert np.max(np.abs(g - num)) <= FD_TOL * scale, (g, num)


def test_negative_ar1_parameter():
    d = _panel(8)
    obj = _objective(d, "y ~ x + (1 | sub)", mm.cor_ar1(form="~ t | sub"), None)
    assert isinstance(obj._gradient_plan(), DenseMarkovGram)
    x = obj.x0.copy()
    x[-1] = -1.2                     # phi = tanh(-0.6) < 0: the second closed form
    _, g = obj.value_and_gradient(x)
    _, g0 = obj._whitened_value_and_gradient(x)
    assert np.allclose(g, g0, rtol=0, atol=PATHS_TOL * max(1.0, np.abs(g0).max()))


def test_correlation_with_variance_keeps_the_whitening_gradient():
    d = _panel()
    obj = _objective(d, "y ~ x + (1 | sub)", mm.cor_ar1(form="~ t | sub"),
                     mm.var_power(form="~ z"))
    assert obj.has_gradient and not obj.gram_gradient


@pytest.mark.parametrize("formula, kw", [
    ("y ~ x + (x | sub)", {"correlation": mm.cor_comp_symm(form="~ 1 | sub")}),
    ("y ~ x + (x | sub)", {"variance": mm.var_exp(form="~ z")}),
])
def test_four_parameter_fits_take_quasi_newton_to_bobyqas_optimum(formula, kw):
    d = _panel(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mm.lmer(formula, d, **kw)
        b = mm.lmer(formula, d, optimizer="bobyqa", **kw)
    k = a.theta.size + a.phi.size
    assert LMM_GRAM_GRADIENT_MIN_PARAMS <= k < LMM_GRADIENT_MIN_PARAMS
    assert a.opt.optimizer.startswith("gradient")
    assert a.loglik >= b.loglik - LOGLIK_TOL
    assert np.allclose(a.fixef, b.fixef, rtol=1e-4, atol=1e-6)
