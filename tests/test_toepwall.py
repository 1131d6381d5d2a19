"""glmer at an optimum on the wall of a Toeplitz domain (glmm_structured.WallOptimum):
glmer must end at the glmmtmb engine's optimum where it is below its two stages' (the
homtoep_pois fixture, simulated Toeplitz Poisson models), with lme4's conventions for a
boundary fit (a SingularFitWarning, fixed-effect standard errors from R_X, the convergence
check off the wall's normal), and keep its two stages where the wall is not lower."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import mixedmodels as mm
import mixedmodels.fitting.glmm as glmm_module
import structures_fixtures as sf
from mixedmodels._errors import ConvergenceWarning, SingularFitWarning
from mixedmodels.covariance.correlated import Toeplitz
from mixedmodels.fitting import glmm_structured
from test_gdoor import _ar1_poisson
from test_toep_optimum import _simulated

glmmtmb_module = importlib.import_module("mixedmodels.fitting.glmmtmb")

#: glmer's objective may exceed the engine's by at most this (deviance units).
OBJECTIVE_TOL = 1e-6


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


def _two_stages(monkeypatch, fun, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(glmm_module, "takes_structured_route", lambda *a: False)
        return _quiet(fun, *args, **kwargs)


def test_homtoep_pois_glmer_at_the_wall_optimum(monkeypatch):
    fx = sf.load("homtoep_pois")
    data = sf.load_data(fx)
    tmb = sf.fit_fixture(fx, "glmmtmb", data)
    two = _two_stages(monkeypatch, sf.fit_fixture, fx, "glmer", data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = mm.glmer(fx["formula"], data, family="poisson")
    # 835.9491 (engine) against 836.6230 (two stages)
    assert g.objective <= tmb.objective + OBJECTIVE_TOL
    assert g.objective < two.objective - 0.5
    assert g.opt.optimizer.endswith("(Toeplitz wall)")
    # lme4's conventions for a boundary fit
    cats = [w.category for w in caught]
    assert SingularFitWarning in cats and ConvergenceWarning not in cats
    assert g.is_singular()
    assert g.vcov_method == "RX"
    assert g.convergence is not None and g.convergence.converged
    assert "wall of the Toeplitz domain" in g.convergence.note
    # the engine's own (glmmTMB's) non-positive-definite-Hessian message is not glmer's
    assert not any("non-positive-definite" in m for m in g.messages)
    assert any("singular" in m for m in g.messages)
    # the standard errors are R_X's at that point: the same as a fresh conditional solve
    obj = g.objective_function
    sol = obj.solve(np.r_[g.theta, g.beta])
    assert abs(sol.objective - g.objective) < 1e-8
    V = sol.phi * glmm_module._rx_vcov(obj, sol)
    np.testing.assert_allclose(g.vcov_beta, V, rtol=1e-8)


def test_homtoep_pois_wall_is_singular_by_the_structure():
    fx = sf.load("homtoep_pois")
    g = _quiet(mm.glmer, fx["formula"], sf.load_data(fx), family="poisson")
    S = g.design.terms[0].structure
    assert isinstance(S, Toeplitz)
    theta = np.asarray(g.theta)
    t = theta[S.n_sd:]
    assert np.all(np.abs(S.cor_parameters(t)) < 1 - 1e-3)     # no lag correlation at +-1
    assert np.linalg.eigvalsh(S.correlation(t))[0] < glmm_structured.WALL_EIGEN_TOL
    assert S.is_singular(theta)
    assert glmm_structured.wall_terms(g.design, theta) == [0]


def test_toeplitz_is_singular_inside_is_false():
    S = Toeplitz(4)
    theta = np.r_[np.zeros(S.n_sd), S.cor_from_parameters(np.array([0.3, 0.1, 0.0]))]
    assert not S.is_singular(theta)


@pytest.mark.parametrize("seed,p,kw", [
    (0, 6, "toep"), (0, 8, "homtoep"), (1, 4, "homtoep"), (1, 8, "toep"), (2, 4, "toep"),
    (3, 6, "homtoep"),
])
def test_simulated_glmer_reaches_the_engine(monkeypatch, seed, p, kw):
    data = _simulated(100 * seed + p, p, "poisson")
    formula = f"y ~ x + {kw}(0 + factor(time) | subject)"
    g = _quiet(mm.glmer, formula, data, family="poisson")
    t = _quiet(mm.glmmtmb, formula, data, family="poisson")
    two = _two_stages(monkeypatch, mm.glmer, formula, data, family="poisson")
    assert g.objective <= t.objective + OBJECTIVE_TOL
    assert g.objective <= two.objective + OBJECTIVE_TOL


def test_wall_not_lower_keeps_the_two_stages(monkeypatch):
    # a wall optimum that does not beat the two stages (made so by raising its value)
    # gives glmer's two-stage fit back, with its messages
    fx = sf.load("homtoep_pois")
    data = sf.load_data(fx)
    two = _two_stages(monkeypatch, sf.fit_fixture, fx, "glmer", data)
    with monkeypatch.context() as m:
        m.setattr(glmm_structured.WallOptimum, "objective", property(lambda self: 1e9))
        g = _quiet(mm.glmer, fx["formula"], data, family="poisson")
    assert not g.opt.optimizer.startswith("glmmtmb engine")
    assert g.objective == pytest.approx(two.objective, abs=1e-10)
    assert g.messages == two.messages


def test_non_toeplitz_structured_route_unchanged():
    # an ar1 model (no wall) is routed as before: converged, Hessian standard errors
    d = _ar1_poisson(6)
    g = _quiet(mm.glmer, "y ~ x + ar1(0 + factor(time) | subject)", d, family="poisson")
    assert g.opt.optimizer.startswith("glmmtmb engine") and "wall" not in g.opt.optimizer
    assert g.vcov_method == "hessian" and g.convergence.converged
