"""glmer's route for structured covariance terms (fitting/glmm_structured): the glmmtmb
engine's fit finished in glmer's deviance. Its optimum must be the glmmtmb door's and at
least as low as glmer's two stages', with the two stages' standard errors; lme4's terms
never take it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.fitting.glmm as glmm_module
import structures_fixtures as sf
from mixedmodels.fitting.glmm_structured import takes_structured_route
from mixedmodels.results.glmm import GeneralizedLinearMixedModelResult

#: The two doors minimize the same deviance: their optima agree to this (deviance units).
OBJECTIVE_TOL = 1e-6
#: Fixed effects of the two doors' optima (each converged to a Newton decrement < 1e-7).
BETA_TOL = 1e-4
#: Covariance parameters, away from flat directions (a variance at zero).
THETA_TOL = 1e-3
#: Standard errors of the route against the two stages' (finite differences, each).
SE_RTOL = 1e-4

ROUTED_FIXTURES = ["ar1_pois", "homcs_binom", "exp_pois_faq", "propto_pois", "ou_pois"]


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


def _two_stages(monkeypatch, fun, *args, **kwargs):
    """The fit with the route switched off (glmer's two stages)."""
    with monkeypatch.context() as m:
        m.setattr(glmm_module, "takes_structured_route", lambda *a: False)
        return _quiet(fun, *args, **kwargs)


def _routed(m) -> bool:
    return m.opt.optimizer.startswith("glmmtmb engine")


def _se(m) -> np.ndarray:
    return np.sqrt(np.diag(m.vcov_beta))


def _compare_doors(g, t):
    L, x = t.layout, t.fit.x
    assert abs(g.objective - t.objective) < OBJECTIVE_TOL
    np.testing.assert_allclose(g.solution.beta, L.get(x, "beta.cond"), atol=BETA_TOL)
    np.testing.assert_allclose(g.solution.theta, L.get(x, "theta.cond"), atol=THETA_TOL)


def _compare_two_stages(g, old):
    assert isinstance(g, GeneralizedLinearMixedModelResult)
    assert g.objective <= old.objective + OBJECTIVE_TOL
    assert g.vcov_method == old.vcov_method == "hessian"
    np.testing.assert_allclose(_se(g), _se(old), rtol=SE_RTOL)
    np.testing.assert_allclose(g.solution.beta, old.solution.beta, atol=BETA_TOL)
    np.testing.assert_allclose(g.fitted(), old.fitted(), rtol=1e-4)


@pytest.mark.parametrize("fid", ROUTED_FIXTURES)
def test_fixture_glmer_door_is_glmmtmb_door(fid, monkeypatch):
    fx = sf.load(fid)
    data = sf.load_data(fx)
    g = sf.fit_fixture(fx, "glmer", data)
    assert _routed(g)
    _compare_doors(g, sf.fit_fixture(fx, "glmmtmb", data))
    assert abs(g.objective - fx["objective"]) < 1e-5          # glmmTMB's own optimum
    _compare_two_stages(g, _two_stages(monkeypatch, sf.fit_fixture, fx, "glmer", data))


def _ar1_poisson(seed: int, n_subj: int = 40, n_time: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rho, sd = 0.6, 0.7
    b = np.empty((n_subj, n_time))
    b[:, 0] = rng.normal(0, sd, n_subj)
    for j in range(1, n_time):
        b[:, j] = rho * b[:, j - 1] + rng.normal(0, sd * np.sqrt(1 - rho ** 2), n_subj)
    subj = np.repeat(np.arange(n_subj), n_time)
    time_ = np.tile(np.arange(n_time), n_subj)
    x = rng.normal(size=subj.size)
    y = rng.poisson(np.exp(0.3 + 0.4 * x + b[subj, time_]))
    return pd.DataFrame({"y": y, "x": x, "subject": [f"s{i}" for i in subj],
                         "time": time_})


def _cs_bernoulli(seed: int, n_subj: int = 60, n_time: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.8, n_subj)
    own = rng.normal(0, 0.5, (n_subj, n_time))
    subj = np.repeat(np.arange(n_subj), n_time)
    time_ = np.tile(np.arange(n_time), n_subj)
    x = rng.normal(size=subj.size)
    eta = -0.2 + 0.8 * x + shared[subj] + own[subj, time_]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "subject": [f"s{i}" for i in subj],
                         "time": time_})


@pytest.mark.parametrize(("make", "formula", "family"), [
    (_ar1_poisson, "y ~ x + ar1(0 + factor(time) | subject)", "poisson"),
    (_ar1_poisson, "y ~ x + ar1(0 + factor(time) | subject, hom = FALSE)", "poisson"),
    (_cs_bernoulli, "y ~ x + cs(0 + factor(time) | subject, hom = TRUE)", "binomial"),
    (_cs_bernoulli, "y ~ x + diag(0 + factor(time) | subject, hom = TRUE)", "binomial"),
])
@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_glmer_door_is_glmmtmb_door(make, formula, family, seed, monkeypatch):
    data = make(seed)
    g = _quiet(mm.glmer, formula, data, family=family)
    t = _quiet(mm.glmmtmb, formula, data, family=family)
    old = _two_stages(monkeypatch, mm.glmer, formula, data, family=family)
    if not _routed(g):
        # the route gives a fit back only where glmer's gradient does not confirm the
        # engine's optimum: a correlation run to one, whose flat direction the engine
        # stops early along (cs, seed 2: 6e-6 above the two stages' optimum)
        assert g.is_singular()
        assert g.objective == old.objective
        assert g.objective <= t.objective + OBJECTIVE_TOL
        return
    L, x = t.layout, t.fit.x
    assert abs(g.objective - t.objective) < OBJECTIVE_TOL
    np.testing.assert_allclose(g.solution.beta, L.get(x, "beta.cond"), atol=BETA_TOL)
    _compare_two_stages(g, old)


def test_simulated_fits_mostly_take_the_route():
    fits = [_quiet(mm.glmer, "y ~ x + ar1(0 + factor(time) | subject)", _ar1_poisson(s),
                   family="poisson") for s in (1, 2, 7)]
    fits += [_quiet(mm.glmer, "y ~ x + cs(0 + factor(time) | subject, hom = TRUE)",
                    _cs_bernoulli(s), family="binomial") for s in (1, 7)]
    assert all(_routed(m) for m in fits)


@pytest.mark.parametrize(("formula", "kwargs"), [
    ("y ~ x + ar1(0 + factor(time) | subject)", {"family": "poisson", "offset": "expo"}),
    ("y ~ x + ar1(0 + factor(time) | subject)", {"family": "poisson", "weights": "w"}),
    ("cbind(k, 6 - k) ~ x + ar1(0 + factor(time) | subject)", {"family": "binomial"}),
    ("y ~ x + (1 | subject) + ar1(0 + factor(time) | subject)", {"family": "poisson"}),
])
def test_offsets_weights_counts_and_mixed_terms(formula, kwargs, monkeypatch):
    data = _ar1_poisson(11)
    rng = np.random.default_rng(0)
    data["expo"] = np.log(rng.uniform(1, 3, len(data)))
    data["w"] = rng.integers(1, 4, len(data)).astype(float)
    data["k"] = rng.binomial(6, 0.4, len(data))
    g = _quiet(mm.glmer, formula, data, **kwargs)
    assert _routed(g)
    _compare_two_stages(g, _two_stages(monkeypatch, mm.glmer, formula, data, **kwargs))


def test_noncanonical_link_keeps_the_two_stages():
    # glmer's Laplace deviance with a probit link (Fisher weights, as lme4) is not the
    # engine's (observed Hessian): the route would find the wrong function's optimum
    data = _cs_bernoulli(3)
    f = "y ~ x + cs(0 + factor(time) | subject, hom = TRUE)"
    g = _quiet(mm.glmer, f, data, family="binomial", link="probit")
    assert not _routed(g)
    assert g.family.link.name == "probit"
    fam = mm.families.make_family("binomial", "probit")
    design = glmm_module.glmm_design(f, data, fam)
    assert not takes_structured_route(design, fam, 1, False, None, "auto", None)


def test_lme4_terms_keep_the_two_stages():
    data = _ar1_poisson(4)
    for f in ("y ~ x + (1 | subject)", "y ~ x + (1 + x | subject)",
              "y ~ x + us(1 + x | subject)", "y ~ x + diag(1 + x | subject)"):
        m = _quiet(mm.glmer, f, data, family="poisson")
        assert not _routed(m), f


def test_route_conditions():
    data = _ar1_poisson(5)
    fam = mm.families.make_family("poisson")
    design = glmm_module.glmm_design("y ~ x + ar1(0 + factor(time) | subject)", data, fam)
    assert takes_structured_route(design, fam, 1, False, None, "auto", None)
    assert not takes_structured_route(design, fam, 0, False, None, "auto", None)
    assert not takes_structured_route(design, fam, 2, False, None, "auto", None)
    assert not takes_structured_route(design, fam, 1, False, None, "bobyqa", None)
    assert not takes_structured_route(design, fam, 1, False, None, "auto", {"maxeval": 99})
    assert not takes_structured_route(design, fam, 1, False, {"theta": [0.1, 0.2]}, "auto",
                                      None)
    assert not takes_structured_route(design, fam, 1, True, None, "auto", None)
    gamma = mm.families.make_family("Gamma")
    assert not takes_structured_route(design, gamma, 1, False, None, "auto", None)


def test_toeplitz_wall_optimum_is_taken():
    # on homtoep_pois the engine's optimum lies at the wall of the Toeplitz domain (a
    # singular correlation, a non-positive-definite Hessian), 0.67 below the two stages':
    # glmer ends there (glmm_structured.WallOptimum; tests/test_toepwall.py)
    fx = sf.load("homtoep_pois")
    g = _quiet(sf.fit_fixture, fx, "glmer", sf.load_data(fx))
    assert _routed(g) and g.opt.optimizer.endswith("(Toeplitz wall)")


def test_routed_fit_methods_work():
    data = _ar1_poisson(6)
    g = _quiet(mm.glmer, "y ~ x + ar1(0 + factor(time) | subject)", data, family="poisson")
    assert _routed(g)
    assert g.convergence is not None and g.convergence.converged
    assert np.all(np.isfinite(g.predict(data.iloc[:5])))
    assert g.fit_log[0]["stage"] == "Laplace"
    # the objective is left at the optimum
    x = g.objective_function.join(g.solution.theta, g.solution.beta)
    assert abs(g.objective_function(x) - g.objective) < 1e-8
