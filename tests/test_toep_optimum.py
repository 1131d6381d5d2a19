"""Toeplitz terms at the wall of their domain (fitting/glmmtmb_wall): the glmmtmb engine's
fit must reach at least the lowest of glmer's two stages, glmmTMB's and its own former
stop (the same fit without the continuation), on the homtoep_pois fixture and on
simulated data; the partial-autocorrelation chart must map onto the positive definite
Toeplitz correlations and back."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.fitting.glmm as glmm_module
import structures_fixtures as sf
from mixedmodels.covariance.correlated import Toeplitz

glmmtmb_module = importlib.import_module("mixedmodels.fitting.glmmtmb")

#: The engine's objective may exceed the best reference by at most this (deviance units).
OBJECTIVE_TOL = 1e-6
#: Round trip of the chart (away from its saturation: |w| of order one).
CHART_TOL = 1e-9


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


def _engine_without_continuation(monkeypatch, formula, data, family):
    with monkeypatch.context() as m:
        m.setattr(glmmtmb_module, "has_wall", lambda obj: False)
        return _quiet(mm.glmmtmb, formula, data, family=family).objective


def _simulated(seed: int, p: int, family: str, n_sub: int = 30) -> pd.DataFrame:
    """Subjects x p times with Toeplitz-correlated effects (alternating-sign lags) near
    the edge of the positive definite region."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    k = np.arange(1, p)
    c = np.r_[1.0, 0.6 * 0.7 ** k * np.where(k % 3 == 2, -1.0, 1.0)]
    R = (c[lag] + 0.05 * np.eye(p)) / 1.05
    with warnings.catch_warnings():
        # for p = 6 the pattern is not positive semi-definite: numpy draws through its
        # SVD (a covariance near the wall, which is what these tests are after) and warns
        warnings.simplefilter("ignore", RuntimeWarning)
        b = rng.multivariate_normal(np.zeros(p), 0.5 * R, size=n_sub)
    x = rng.normal(size=(n_sub, p))
    eta = 0.3 + 0.5 * x + b
    y = rng.poisson(np.exp(eta)) if family == "poisson" else eta + 0.5 * rng.normal(
        size=eta.shape)
    return pd.DataFrame({"subject": np.repeat([f"s{i:02d}" for i in range(n_sub)], p),
                         "time": np.tile(np.arange(p), n_sub), "x": x.ravel(),
                         "y": y.ravel().astype(float)})


def test_chart_is_onto_the_positive_definite_toeplitz_correlations():
    rng = np.random.default_rng(3)
    for p in (2, 4, 8):
        S = Toeplitz(p, hom=True)
        for _ in range(200):
            w = rng.normal(size=p - 1)
            t = S.t_from_chart(w)
            assert np.linalg.eigvalsh(S.correlation(t)).min() > 0
            assert np.max(np.abs(S.chart_from_t(t) - w)) < CHART_TOL
    S = Toeplitz(3)
    with pytest.raises(ValueError, match="positive definite"):
        S.chart_from_t(S.cor_from_parameters(np.array([0.9, -0.9])))


def test_chart_far_out_stays_finite_without_warnings():
    # |w| beyond ~19 rounds tanh to +-1: the point is kept a rounding step inside the wall
    # (finite t, a correlation just inside (-1, 1)) instead of t = inf and numpy warnings
    S = Toeplitz(4, hom=True)
    w = np.array([40.0, -3.0, 25.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        t = S.t_from_chart(w)
        c = S.cor_parameters(t)
        tc = S.t_from_chart(w.astype(complex) + 1j * 1e-20 * np.eye(3)[0])
    assert np.all(np.isfinite(t)) and np.all(np.abs(c) < 1.0)
    assert np.all(np.isfinite(tc)) and tc.imag[0] == 0.0
    # inside the rounding edge nothing changes
    w_in = np.array([2.0, -1.0, 0.5])
    a = np.tanh(w_in)
    assert S.cor_parameters(S.t_from_chart(w_in))[0] == pytest.approx(a[0], rel=1e-14)


def test_homtoep_pois_reaches_the_lowest_optimum(monkeypatch):
    fx = sf.load("homtoep_pois")
    data = sf.load_data(fx)
    tmb = sf.fit_fixture(fx, "glmmtmb", data)
    with monkeypatch.context() as m:    # glmer's two stages alone (glmer itself now ends
        # at the engine's wall optimum: tests/test_toepwall.py)
        m.setattr(glmm_module, "takes_structured_route", lambda *a: False)
        two_stages = sf.fit_fixture(fx, "glmer", data)
    best = min(two_stages.objective, fx["objective"])
    # 835.949 against 836.623 (two stages), 837.859 (glmmTMB), 837.099 (before)
    assert tmb.objective <= best + OBJECTIVE_TOL
    assert tmb.objective < best - 0.5
    # the same function: glmer's deviance at the engine's optimum
    L = tmb.layout
    obj = two_stages.objective_function
    x = obj.join(L.get(tmb.fit.x, "theta.cond"), L.get(tmb.fit.x, "beta.cond"))
    assert abs(obj(x) - tmb.objective) < 1e-8


@pytest.mark.parametrize("seed,p,kw,family", [
    (0, 6, "toep", "poisson"), (1, 4, "homtoep", "poisson"), (2, 4, "toep", "poisson"),
    (1, 8, "homtoep", "poisson"), (0, 4, "toep", "gaussian"), (1, 8, "homtoep", "gaussian"),
    (2, 6, "toep", "gaussian"), (2, 6, "homtoep", "poisson"),
    pytest.param(0, 8, "toep", "gaussian", marks=pytest.mark.xfail(strict=True, reason=(
        "not the wall: the residual sd goes to zero (2.1e-5, a flat direction of the "
        "engine's Gaussian objective) and the engine stops 3.8e-4 above lmer, with and "
        "without the continuation; open (benchmarks/results/toep_notes.md)"))),
])
def test_simulated_toeplitz_at_least_as_low(monkeypatch, seed, p, kw, family):
    data = _simulated(100 * seed + p, p, family)
    formula = f"y ~ x + {kw}(0 + factor(time) | subject)"
    new = _quiet(mm.glmmtmb, formula, data, family=family).objective
    before = _engine_without_continuation(monkeypatch, formula, data, family)
    ref = (_quiet(mm.glmer, formula, data, family="poisson") if family == "poisson"
           else _quiet(mm.lmer, formula, data, REML=False)).objective
    assert new <= min(before, ref) + OBJECTIVE_TOL


#: Standard errors of the route against the two stages' (each by finite differences: the
#: two stages difference a BOBYQA optimum's deviance for Toeplitz terms, to ~1e-4).
ROUTE_SE_RTOL = 5e-4


def _two_stages(monkeypatch, formula, data):
    with monkeypatch.context() as m:
        m.setattr(glmm_module, "takes_structured_route", lambda *a: False)
        return _quiet(mm.glmer, formula, data, family="poisson")


@pytest.mark.parametrize("seed,p,kw", [(0, 4, "toep"), (1, 4, "homtoep"), (0, 8, "homtoep"),
                                       (3, 6, "homtoep")])
def test_toeplitz_glmer_route_at_an_interior_optimum(monkeypatch, seed, p, kw):
    data = _simulated(100 * seed + p, p, "poisson")
    formula = f"y ~ x + {kw}(0 + factor(time) | subject)"
    g = _quiet(mm.glmer, formula, data, family="poisson")
    assert g.opt.optimizer.startswith("glmmtmb engine")
    old = _two_stages(monkeypatch, formula, data)
    assert g.objective <= old.objective + OBJECTIVE_TOL
    t = _quiet(mm.glmmtmb, formula, data, family="poisson")
    assert abs(g.objective - t.objective) < OBJECTIVE_TOL
    if abs(g.objective - old.objective) < OBJECTIVE_TOL:
        np.testing.assert_allclose(np.sqrt(np.diag(g.vcov_beta)),
                                   np.sqrt(np.diag(old.vcov_beta)), rtol=ROUTE_SE_RTOL)


def test_toeplitz_at_the_wall_takes_the_wall_optimum():
    # the engine's optimum of homtoep_pois has a singular correlation (a non-positive-
    # definite Hessian): glmer keeps it where it is below the two stages' (0.67 lower
    # here; tests/test_toepwall.py)
    fx = sf.load("homtoep_pois")
    g = _quiet(sf.fit_fixture, fx, "glmer", sf.load_data(fx))
    assert g.opt.optimizer.endswith("(Toeplitz wall)")
