"""blmer / bglmer against blme 1.0.5 (tests/fixtures/blme/blme_fixtures.json, made by
tools/r/blme_fixtures.R), and the priors' deviances against scipy.stats.

The fixtures hold blme's fit at the minimum of blme's own objective (the R script minimizes
blme's deviance function again from several starts, because blme's optimizer stops early on
several of these models -- ``blme_default_objective`` keeps where it stopped). Tolerances:

* the penalized objective at blme's parameter values: 1e-7 relative (the same function);
* fitted: objective and its likelihood / prior parts 1e-4, theta 1e-4, beta 1e-4 relative
  to max(|beta|, SE), sigma 1e-4 relative, standard errors 1e-3 relative (LMM; exact
  formula) and 2e-3 (GLMM: finite-difference Hessians, ours and lme4's);
* the prior lines of the summary exactly as blme prints them.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from blme_cases import fit as _fit
from blme_cases import objective_at as _objective_at
from blme_cases import vec as _vec
from mixedmodels.bayes import priors as P  # noqa: N812 - blme's prior calls, short
from mixedmodels.bayes.model_priors import PriorWarning
from mixedmodels.bayes.priors import PriorContext

DATA = json.loads((Path(__file__).parent / "fixtures" / "blme" / "blme_fixtures.json")
                  .read_text())
CASES = {c["name"]: c for c in DATA["cases"]}

DEVFUN_RTOL = 1e-7
OBJECTIVE_ATOL = 1e-4
THETA_ATOL = 1e-4
BETA_RTOL = 1e-4
SIGMA_RTOL = 1e-4
SE_RTOL_LMM = 1e-3
SE_RTOL_GLMM = 2e-3


@pytest.fixture(scope="module")
def fits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: _fit(c) for name, c in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_objective_at_blme_parameters(name):
    for ours, blme in _objective_at(CASES[name]):
        assert ours == pytest.approx(blme, rel=DEVFUN_RTOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_blme(fits, name):
    c, m = CASES[name], fits[name]
    assert m.objective == pytest.approx(c["objective"], abs=OBJECTIVE_ATOL)
    assert m.likelihood == pytest.approx(c["likelihood"], abs=OBJECTIVE_ATOL)
    assert m.prior_deviance == pytest.approx(c["penalty"], abs=OBJECTIVE_ATOL)
    np.testing.assert_allclose(m.theta, _vec(c["theta"]), atol=THETA_ATOL, rtol=0)
    beta, se = _vec(c["beta"]), _vec(c["se"])
    assert np.all(np.abs(m.beta - beta) <= BETA_RTOL * np.maximum(np.abs(beta), se))
    glmm = c["py"]["fun"] == "bglmer"
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=SE_RTOL_GLMM if glmm else SE_RTOL_LMM)
    if not glmm:
        assert m.sigma == pytest.approx(c["sigma"], rel=SIGMA_RTOL)
    # never worse than where blme's own optimizer stopped
    assert m.objective <= c["blme_default_objective"] + OBJECTIVE_ATOL


@pytest.mark.parametrize("name", sorted(CASES))
def test_summary_prior_lines_as_blme(fits, name):
    c, m = CASES[name], fits[name]
    expected = [ln for ln in c["printed"] if ln.startswith(("Cov prior", "Fixef prior",
                                                            "Resid prior", "           :"))]
    assert m.priors.describe() == expected
    text = str(m.summary())
    dev_line = next(ln for ln in c["printed"] if ln.startswith("Prior dev"))
    printed = float(dev_line.split(":")[1])
    ours = next(ln for ln in text.splitlines() if ln.startswith("Prior dev"))
    assert float(ours.split(":")[1]) == pytest.approx(printed, abs=1e-4)


def test_singular_lmer_fit_is_stabilized():
    """The FAQ's use: Dyestuff2's variance is 0 under lmer, positive under blmer."""
    d = mm.datasets.load("Dyestuff2")
    with pytest.warns(mm.SingularFitWarning):
        plain = mm.lmer("Yield ~ 1 + (1 | Batch)", d)
    assert plain.is_singular()
    m = mm.blmer("Yield ~ 1 + (1 | Batch)", d)
    assert not m.is_singular() and m.theta[0] > 0.3
    assert m.objective == pytest.approx(m.likelihood + m.prior_deviance, abs=1e-10)


def test_no_priors_is_lmer():
    d = mm.datasets.load("sleepstudy")
    a = mm.lmer("Reaction ~ Days + (Days | Subject)", d)
    b = mm.blmer("Reaction ~ Days + (Days | Subject)", d, cov_prior=None)
    assert b.objective == pytest.approx(a.objective, abs=1e-6)
    np.testing.assert_allclose(b.theta, a.theta, atol=1e-4)
    np.testing.assert_allclose(b.se, a.se, rtol=1e-4)
    assert b.prior_deviance == 0.0


def test_no_priors_is_glmer():
    d = mm.datasets.load("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    a = mm.glmer(f, d, family="binomial")
    b = mm.bglmer(f, d, family="binomial", cov_prior=None)
    assert b.objective == pytest.approx(a.objective, abs=1e-6)
    np.testing.assert_allclose(b.beta, a.beta, atol=1e-4)


# -- the priors' deviances against scipy.stats ---------------------------------------------

def _cov_prior_deviance(prior, lam, sigma=1.0):
    ctx = PriorContext("cov", dim=lam.shape[0], label="test")
    r = prior.resolve(ctx)
    arg = float(lam[0, 0]) if r.scalar_term else lam
    return (r.exponential(arg) * sigma ** r.sigma_power() + r.polynomial(arg) + r.constant
            + r.df_adjust * np.log(sigma ** 2))


LAM = np.array([[1.3, 0.0], [-0.4, 0.7]])


def test_wishart_is_the_wishart_density():
    S = np.array([[2.0, 0.3], [0.3, 0.8]])
    sigma = 1.7
    ours = _cov_prior_deviance(P.wishart(df=5.5, scale=S, common_scale=False), LAM, sigma)
    X = sigma ** 2 * LAM @ LAM.T
    assert ours == pytest.approx(-2 * stats.wishart(df=5.5, scale=S).logpdf(X), rel=1e-10)
    # common scale: the density of Lambda Lambda' itself
    ours = _cov_prior_deviance(P.wishart(df=5.5, scale=S), LAM, sigma)
    assert ours == pytest.approx(-2 * stats.wishart(df=5.5, scale=S).logpdf(LAM @ LAM.T),
                                 rel=1e-10)


def test_invwishart_is_the_inverse_wishart_density():
    S = np.array([[1.5, -0.2], [-0.2, 0.6]])
    sigma = 0.8
    ours = _cov_prior_deviance(P.invwishart(df=4.0, scale=S, common_scale=False), LAM, sigma)
    X = sigma ** 2 * LAM @ LAM.T
    assert ours == pytest.approx(-2 * stats.invwishart(df=4.0, scale=S).logpdf(X), rel=1e-10)


@pytest.mark.parametrize("post", ["sd", "var"])
def test_gamma_and_invgamma_are_their_densities(post):
    lam, sigma = np.array([[0.9]]), 2.3
    x = sigma * 0.9 if post == "sd" else (sigma * 0.9) ** 2
    g = _cov_prior_deviance(P.gamma(shape=3.0, rate=0.7, common_scale=False,
                                    posterior_scale=post), lam, sigma)
    assert g == pytest.approx(-2 * stats.gamma(3.0, scale=1 / 0.7).logpdf(x), rel=1e-10)
    ig = _cov_prior_deviance(P.invgamma(shape=2.5, scale=1.4, common_scale=False,
                                        posterior_scale=post), lam, sigma)
    assert ig == pytest.approx(-2 * stats.invgamma(2.5, scale=1.4).logpdf(x), rel=1e-10)


def test_fixef_priors_are_their_densities():
    names = ("Intercept", "x", "z")
    ctx = PriorContext("fixef", glmm=True, fixef_names=names, label="test")
    beta = np.array([0.5, -1.2, 2.0])
    C = np.array([[4.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
    n = P.normal(cov=C).resolve(ctx)
    assert n.exponential(beta) + n.constant == pytest.approx(
        -2 * stats.multivariate_normal(np.zeros(3), C).logpdf(beta), rel=1e-10)
    t = P.t(df=4.0, mean=[0.1, 0.0, 0.3], scale=C).resolve(ctx)
    assert t.exponential(beta) + t.constant == pytest.approx(
        -2 * stats.multivariate_t([0.1, 0.0, 0.3], C, df=4.0).logpdf(beta), rel=1e-10)


def test_normal_sd_spellings():
    ctx = PriorContext("fixef", fixef_names=("Intercept", "a", "b"), label="test")
    default = np.diag(P.normal().resolve(ctx).cov)
    np.testing.assert_allclose(default, [100.0, 6.25, 6.25])
    named = np.diag(P.normal(sd={"a": 2.0}).resolve(ctx).cov)
    assert np.isinf(named[0]) and named[1] == 4.0 and np.isinf(named[2])


# -- results are ordinary fit results ------------------------------------------------------

def test_results_work_like_lmer_results(fits):
    m = fits["sleepstudy_normal_fixef"]
    d = mm.datasets.load("sleepstudy")
    pred = m.predict(d.head(3))
    assert pred.shape == (3,) and np.all(np.isfinite(pred))
    ci = m.confint(method="wald")
    assert list(ci.columns) == ["lower", "upper"]
    again = pickle.loads(pickle.dumps(m))
    assert again.objective == m.objective and again.penalized(m.theta) == pytest.approx(
        m.objective, abs=1e-8)
    up = m.update(fixef_prior=None)
    assert isinstance(up, mm.BlmerResult) and up.priors.fixef is None
    assert "with priors" in repr(m)


def test_anova_notes_priors(fits):
    d = mm.datasets.load("sleepstudy")
    small = mm.blmer("Reaction ~ Days + (1 | Subject)", d, REML=False)
    big = mm.blmer("Reaction ~ Days + (Days | Subject)", d, REML=False)
    res = mm.anova(small, big)
    assert "posterior mode" in str(res)
    assert res.table["logLik"].iloc[1] == pytest.approx(-0.5 * big.likelihood)


def test_profile_confint_of_blmer_profiles_the_penalized_objective():
    m = mm.blmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"), REML=False)
    ci = m.confint(method="profile")
    # the prior keeps the sd off zero: the lower end is inside, not truncated at 0
    lo, hi = ci.loc["sd_(Intercept)|Batch", ["lower", "upper"]]
    sd = float(m.theta[0] * m.sigma)
    assert 0.1 < lo < sd < hi
    name = m.fixef.index[0]
    assert ci.loc[name, "lower"] < m.fixef.iloc[0] < ci.loc[name, "upper"]
    assert "note" not in ci.columns          # nothing truncated at a bound


# -- bad input ---------------------------------------------------------------------------------

def test_bad_prior_arguments():
    d = mm.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (Days | Subject)"
    with pytest.raises(TypeError, match=r"mm\.priors\.wishart\(\)"):
        mm.blmer(f, d, cov_prior="wishart")
    with pytest.raises(TypeError, match="call it"):
        mm.blmer(f, d, cov_prior=P.wishart)
    with pytest.raises(ValueError, match="REML=False"):
        mm.blmer(f, d, fixef_prior=P.t())
    with pytest.raises(ValueError, match="not in the model"):
        mm.blmer(f, d, cov_prior={"Subjekt": P.wishart()})
    with pytest.raises(ValueError, match="cannot be a covariance prior"):
        mm.blmer(f, d, cov_prior=P.normal())
    with pytest.raises(ValueError, match="df must exceed"):
        mm.blmer(f, d, cov_prior=P.wishart(df=0.5))
    with pytest.warns(PriorWarning, match="ignored"):
        mm.blmer(f, d, cov_prior=P.gamma())
    cb = mm.datasets.load("cbpp")
    g = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with pytest.raises(ValueError, match="common_scale does not apply"):
        mm.bglmer(g, cb, cov_prior=P.wishart(common_scale=False))
    with pytest.raises(TypeError):
        mm.bglmer(g, cb, resid_prior=P.point(1.0))
