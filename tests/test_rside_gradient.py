"""The exact gradient of the ``gls`` criterion in the residual parameters.

Every correlation class (AR(1), CAR(1), ARMA, compound symmetry, general, the spatial
classes with and without nugget) and every variance function (ident, power, exp, constant
plus power, fixed, their combination; with strata), alone and combined, with prior
weights, REML and ML, estimated and known sigma: the gradient of
``GLSObjective.value_and_gradient`` against central differences of the criterion at
random parameters (unequal group sizes, irregular times). The fits that use it match the
derivative-free fits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.fitting.rside import GRADIENT_MIN_PARAMS
from mixedmodels.formula import parse_formula
from mixedmodels.rside.objective import GLSObjective
from mixedmodels.rside.residual import ResidualSpec, bind_residual, residual_columns

#: Relative agreement of the analytic gradient with central differences (step 1e-6: the
#: differences carry ~1e-9 of rounding and O(h^2) truncation).
GRADIENT_TOL = 1e-6
FD_STEP = 1e-6


def _panel(seed=3):
    rng = np.random.default_rng(seed)
    g, m = 10, 5
    d = pd.DataFrame({"sub": np.repeat([f"s{i}" for i in range(g)], m),
                      "t": np.tile(np.arange(1, m + 1), g).astype(float),
                      "x": rng.normal(size=g * m), "z": rng.uniform(0.5, 3.0, size=g * m),
                      "grp": rng.choice(["a", "b", "c"], g * m),
                      "w": rng.uniform(0.5, 2.0, size=g * m)})
    d = d.drop(index=[3, 17, 18, 31]).reset_index(drop=True)       # unequal groups
    d["tt"] = d["t"] + rng.uniform(0.0, 0.5, len(d))                 # irregular times
    d["y"] = 1.0 + d.x + rng.normal(size=len(d)) * d.z
    return d


CORRELATIONS = [
    mm.cor_ar1(form="~ t | sub"), mm.cor_car1(form="~ tt | sub"),
    mm.cor_arma(form="~ t | sub", p=1, q=1), mm.cor_arma(form="~ t | sub", p=2),
    mm.cor_arma(form="~ t | sub", q=2), mm.cor_comp_symm(form="~ 1 | sub"),
    mm.cor_symm(form="~ t | sub"),
    mm.cor_exp(form="~ tt | sub"), mm.cor_exp(form="~ tt + x | sub", nugget=True),
    mm.cor_gaus(form="~ tt | sub"), mm.cor_gaus(form="~ tt | sub", nugget=True),
    mm.cor_spher(form="~ tt | sub"), mm.cor_spher(form="~ tt | sub", nugget=True),
    mm.cor_lin(form="~ tt | sub"), mm.cor_lin(form="~ tt | sub", nugget=True),
    mm.cor_ratio(form="~ tt | sub"), mm.cor_ratio(form="~ tt | sub", nugget=True),
    mm.cor_exp(form="~ tt | sub", metric="manhattan"),
]
VARIANCES = [
    mm.var_ident(form="~ 1 | grp"), mm.var_power(form="~ z"),
    mm.var_power(form="~ z | grp"), mm.var_exp(form="~ z"),
    mm.var_exp(form="~ z | grp"), mm.var_const_power(form="~ z"),
    mm.var_const_power(form="~ z | grp"), mm.var_fixed("~ z"),
    [mm.var_ident(form="~ 1 | grp"), mm.var_power(form="~ z")],
    [mm.var_fixed("~ z"), mm.var_exp(form="~ z")],
]
COMBINED = [(mm.cor_ar1(form="~ t | sub"), [mm.var_ident(form="~ 1 | grp"),
                                             mm.var_power(form="~ z")]),
            (mm.cor_exp(form="~ tt | sub", nugget=True), mm.var_exp(form="~ z")),
            (mm.cor_symm(form="~ t | sub"), mm.var_ident(form="~ 1 | grp")),
            (mm.cor_arma(form="~ t | sub", p=1, q=1), mm.var_const_power(form="~ z")),
            (mm.cor_comp_symm(form="~ 1 | sub"), mm.var_power(form="~ z | grp"))]


def _objective(d, cor, var, reml=True, sigma=None, weights=None):
    spec = ResidualSpec.make(cor, var, sigma)
    design = materialize(parse_formula("y ~ x"), d, require_random=False, weights=weights,
                         extra_columns=residual_columns(spec))
    return GLSObjective(design.X, design.y, bind_residual(spec, design), reml=reml)


def _check(obj, seed):
    x = obj.x0 + np.random.default_rng(seed).normal(scale=0.3, size=obj.x0.size)
    f, g = obj.value_and_gradient(x)
    assert f == pytest.approx(obj(x), rel=1e-12, abs=1e-10)
    num = np.array([(obj(x + FD_STEP * e) - obj(x - FD_STEP * e)) / (2 * FD_STEP)
                    for e in np.eye(x.size)])
    scale = max(1.0, float(np.max(np.abs(num), initial=0.0)))
    assert g.shape == x.shape
    assert np.max(np.abs(g - num), initial=0.0) <= GRADIENT_TOL * scale, (g, num)


@pytest.mark.parametrize("cor", CORRELATIONS, ids=lambda c: c.describe())
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_of_each_correlation(cor, reml):
    _check(_objective(_panel(), cor, None, reml=reml), 1)


@pytest.mark.parametrize("var", VARIANCES, ids=str)
def test_gradient_of_each_variance_function(var):
    _check(_objective(_panel(), None, var), 2)


@pytest.mark.parametrize("cor, var", COMBINED, ids=str)
@pytest.mark.parametrize("sigma, weights", [(None, None), (1.7, None), (None, "w")])
def test_gradient_of_combinations(cor, var, sigma, weights):
    _check(_objective(_panel(), cor, var, sigma=sigma, weights=weights), 3)


def test_fixed_correlation_has_no_gradient_entries():
    d = _panel()
    obj = _objective(d, mm.cor_ar1(form="~ t | sub", value=(0.4,), fixed=True),
                     mm.var_power(form="~ z"))
    assert obj.x0.size == 1
    _check(obj, 4)


def test_kinked_correlation_uses_no_gradient():
    assert not _objective(_panel(), mm.cor_lin(form="~ tt | sub"), None).has_gradient
    assert _objective(_panel(), mm.cor_spher(form="~ tt | sub"), None).has_gradient


def test_quasi_newton_fit_matches_bobyqa():
    d = _panel(5)
    cor, var = mm.cor_symm(form="~ t | sub"), mm.var_ident(form="~ 1 | grp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mm.gls("y ~ x", d, correlation=cor, variance=var)
        b = mm.gls("y ~ x", d, correlation=cor, variance=var, optimizer="bobyqa")
    assert a.phi.size >= GRADIENT_MIN_PARAMS
    assert a.opt.optimizer.startswith("gradient")
    assert a.loglik >= b.loglik - 1e-6
    assert np.allclose(a.fixef, b.fixef, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cor, flag", [(mm.cor_ar1(form="~ t | sub"), "_in_order"),
                                       (mm.cor_car1(form="~ tt | sub"), "_in_order"),
                                       (mm.cor_comp_symm(form="~ 1 | sub"), "_grouped")],
                         ids=lambda c: getattr(c, "label", c))
def test_closed_form_whitening_in_order_and_shuffled_equals_cholesky(cor, flag):
    """The paths for rows already in group(-then-time) order and for shuffled rows of the
    closed-form whitenings (AR(1), CAR(1), compound symmetry) both give the Cholesky
    path's log-determinant and cross-products."""
    d = _panel()
    shuffled = d.sample(frac=1.0, random_state=7).reset_index(drop=True)
    for frame in (d, shuffled):
        obj = _objective(frame, cor, None)
        bound = obj.residual.correlation
        assert getattr(bound, flag) == (frame is d)
        Mf = np.column_stack([np.ones(len(frame)), frame.x, frame.y])
        u = np.array([0.8])
        closed, ld = bound.whiten(u, Mf)
        generic, ld_g = super(type(bound), bound).whiten(u, Mf)
        assert ld == pytest.approx(ld_g, rel=1e-12)
        assert np.allclose(closed.T @ closed, generic.T @ generic, rtol=1e-10)


# -- lmer(correlation=, variance=): the dense value and gradient in [theta, phi] ---------------
def _lmm_objective(d, formula, cor, var, reml=True, sigma=None, weights=None):
    from mixedmodels.rside.objective import RSideLMMObjective

    spec = ResidualSpec.make(cor, var, sigma)
    design = materialize(parse_formula(formula), d, weights=weights,
                         extra_columns=residual_columns(spec))
    return RSideLMMObjective(design, bind_residual(spec, design), reml=reml)


def _lmm_panel():
    d = _panel(11)
    d["clinic"] = d["sub"].map(lambda s: f"c{int(s[1:]) % 3}")
    return d


LMM_CASES = [
    ("y ~ x + (1 | sub)", mm.cor_ar1(form="~ t | sub"), None),
    ("y ~ x + (x | sub)", mm.cor_car1(form="~ tt | sub"), mm.var_power(form="~ z")),
    ("y ~ x + (1 | sub)", mm.cor_arma(form="~ t | sub", p=1, q=1),
     mm.var_ident(form="~ 1 | grp")),
    ("y ~ x + (1 | sub)", mm.cor_exp(form="~ tt | sub", nugget=True), None),
    ("y ~ x + (1 | sub)", mm.cor_symm(form="~ t | sub"), None),
    ("y ~ x + (1 | sub)", None, mm.var_const_power(form="~ z")),
    ("y ~ x + (1 | clinic) + (1 | clinic:sub)", mm.cor_comp_symm(form="~ 1 | clinic/sub"),
     mm.var_exp(form="~ z")),
    ("y ~ x + (x || sub)", mm.cor_ratio(form="~ tt | sub"), None),
]


@pytest.mark.parametrize("formula, cor, var", LMM_CASES, ids=str)
@pytest.mark.parametrize("reml, sigma, weights", [(True, None, None), (False, None, "w"),
                                                   (True, 0.8, None)])
def test_lmm_gradient_matches_central_differences(formula, cor, var, reml, sigma, weights):
    obj = _lmm_objective(_lmm_panel(), formula, cor, var, reml, sigma, weights)
    assert obj.has_gradient
    _check(obj, 5)


def test_lmm_gradient_in_relative_theta():
    from mixedmodels.fitting.rside import _RelativeTheta

    obj = _lmm_objective(_lmm_panel(), "y ~ x + (x | sub)", mm.cor_ar1(form="~ t | sub"),
                         [mm.var_ident(form="~ 1 | grp"), mm.var_power(form="~ z")])
    rel = _RelativeTheta(obj, obj.x0)
    rel.x0 = rel.from_model(obj.x0)
    _check(rel, 6)


def test_lmm_gradient_not_offered_for_kinks_or_structured_terms():
    d = _lmm_panel()
    assert not _lmm_objective(d, "y ~ x + (1 | sub)", mm.cor_lin(form="~ tt | sub"),
                              None).has_gradient
    assert not _lmm_objective(d, "y ~ x + cs(0 + factor(grp) | sub)",
                              mm.cor_ar1(form="~ t | sub"), None).has_gradient


def test_lmm_quasi_newton_fit_matches_bobyqa():
    from mixedmodels.fitting.rside import LMM_GRADIENT_MIN_PARAMS

    d = _lmm_panel()
    kw = {"correlation": mm.cor_car1(form="~ tt | sub"),
          "variance": [mm.var_ident(form="~ 1 | grp"), mm.var_power(form="~ z")]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mm.lmer("y ~ x + (x | sub)", d, **kw)
        b = mm.lmer("y ~ x + (x | sub)", d, optimizer="bobyqa", **kw)
    assert a.theta.size + a.phi.size >= LMM_GRADIENT_MIN_PARAMS
    assert a.opt.optimizer.startswith("gradient")
    assert a.loglik >= b.loglik - 1e-6
    assert np.allclose(a.fixef, b.fixef, rtol=1e-3, atol=1e-5)


def test_parts_without_derivatives_turn_the_gradient_off():
    from mixedmodels.rside.correlation import BoundCorrelation
    from mixedmodels.rside.variance import BoundVariance

    class NoJacobian(BoundVariance):
        def log_sd(self, u):
            return np.zeros(3)

    class NoDerivatives(BoundCorrelation):
        pass

    obj = _objective(_panel(), mm.cor_ar1(form="~ t | sub"), mm.var_power(form="~ z"))
    assert obj.has_gradient
    assert not NoJacobian(mm.var_power(), (), np.zeros(0)).has_jacobian
    assert not NoDerivatives.has_gradient.fget(object.__new__(NoDerivatives))
    obj.residual.variance = NoJacobian(mm.var_power(), (), np.zeros(0))
    assert not obj.has_gradient


def test_optimizer_gradient_is_honoured_or_refused_clearly():
    d = _lmm_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = mm.gls("y ~ x", d, correlation=mm.cor_ar1(form="~ t | sub"), optimizer="gradient")
        a = mm.gls("y ~ x", d, correlation=mm.cor_ar1(form="~ t | sub"), optimizer="bobyqa")
        # auto: AR(1)'s gradient costs about a value, so quasi-Newton (gls_quasi_newton;
        # its one parameter: the cubic search of gls_scalar)
        q = mm.gls("y ~ x", d, correlation=mm.cor_ar1(form="~ t | sub"))
        lg = mm.lmer("y ~ x + (1 | sub)", d, variance=mm.var_power(form="~ z"),
                     optimizer="gradient")
        la = mm.lmer("y ~ x + (1 | sub)", d, variance=mm.var_power(form="~ z"))
    # (the quasi-Newton search of fitting/rside_quasi_newton.py)
    assert g.opt.optimizer == "gradient:projected BFGS" and a.opt.optimizer.startswith("nlopt")
    assert q.opt.optimizer == "gradient:1-D cubic"
    assert g.loglik == pytest.approx(a.loglik, abs=1e-6)
    assert q.loglik == pytest.approx(a.loglik, abs=1e-6)
    assert lg.opt.optimizer.startswith("gradient")
    assert lg.loglik == pytest.approx(la.loglik, abs=1e-6)
    with pytest.raises(ValueError, match="optimizer='gradient' needs the criterion's"):
        mm.gls("y ~ x", d, correlation=mm.cor_lin(form="~ tt | sub"), optimizer="gradient")
