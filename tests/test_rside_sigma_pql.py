"""A known residual standard deviation (metafor, blme, a written-out likelihood) and PQL
(MASS::glmmPQL), against the fixtures of tools/r/rside_fixtures.R.

Tolerances as in test_rside_nlme: log-likelihood 1e-4 absolute, coefficients 1e-4 relative
to max(|est|, SE), standard errors 1e-3 relative, variance parameters 1e-3.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from rside_fixtures import data, fit, models

LOGLIK_TOL = 1e-4
COEF_TOL = 1e-4
SE_TOL = 1e-3
PAR_TOL = 1e-3


def _vec(x):
    return np.atleast_1d(np.asarray(x, dtype=float))


def _check_beta(m, coef, se):
    coef, se = _vec(coef), _vec(se)
    scale = np.maximum(np.abs(coef), se)
    assert np.all(np.abs(m.fixef.to_numpy() - coef) <= COEF_TOL * scale), (m.fixef, coef)
    assert np.all(np.abs(m.se.to_numpy() - se) <= SE_TOL * se), (m.se, se)


META = models("meta")


@pytest.mark.parametrize("fx", META, ids=[f["name"] for f in META])
def test_meta_analysis_matches_metafor_and_blme(fx):
    if fx["tau2"] < 1e-8:      # metafor's tau^2 on its boundary: ours is singular too
        with pytest.warns(mm.SingularFitWarning, match="singular"):
            m = fit(fx)
    else:
        m = fit(fx)
    assert m.sigma == 1.0 and m.df == len(_vec(fx["coef"])) + 1
    tau2 = float(m.varcorr.terms[0].cov[0, 0])
    # metafor's rma: tau^2, estimates, standard errors
    assert tau2 == pytest.approx(fx["tau2"], rel=PAR_TOL, abs=1e-6)
    _check_beta(m, fx["coef"], fx["se"])
    # the FAQ's blme recipe: the same model as a mixed model, its log-likelihood
    assert m.loglik == pytest.approx(fx["blme_logLik"], abs=LOGLIK_TOL)
    assert tau2 == pytest.approx(fx["blme_tau2"], rel=PAR_TOL)


SIGMA = models("sigma")


@pytest.mark.parametrize("fx", SIGMA, ids=[f["name"] for f in SIGMA])
def test_known_sigma_maximizes_the_likelihood_at_that_sigma(fx):
    """The reference is the (restricted) likelihood at sigma = 2 written out in R and
    maximized there; nlme's fixed-sigma lme optimizes another criterion (its logLik and
    estimate are in the fixture: lower than the likelihood's maximum)."""
    m = fit(fx)
    assert m.sigma == 2.0
    assert m.loglik == pytest.approx(fx["logLik"], abs=LOGLIK_TOL)
    assert float(m.varcorr.terms[0].cov[0, 0]) == pytest.approx(fx["tau2"], rel=PAR_TOL)
    _check_beta(m, fx["coef"], fx["se"])


def test_one_observation_per_level_is_allowed_only_with_known_sigma():
    d = data("bcg")
    with pytest.raises(mm.DataError, match="levels for 13 observations"):
        mm.lmer("yi ~ 1 + (1 | trial)", d, weights="w")
    m = mm.lmer("yi ~ 1 + (1 | trial)", d, weights="w", sigma=1.0)
    assert m.ngroups["trial"] == m.nobs


def test_sigma_with_a_non_gaussian_family_is_an_error():
    cbpp = mm.datasets.load("cbpp")
    with pytest.raises(ValueError, match="binomial family has no residual standard deviation"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 sigma=1.0)
    with pytest.raises(ValueError, match="sigma= must be a positive number"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"),
                sigma=-1.0)


PQL = models("pql")


@pytest.mark.parametrize("fx", PQL, ids=[f["name"] for f in PQL])
def test_pql_matches_glmmpql(fx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit(fx)
    _check_beta(m, fx["coef"], fx["se"])
    assert m.sigma == pytest.approx(fx["sigma"], rel=PAR_TOL)
    sd = np.sqrt(np.diag(m.varcorr.terms[0].cov))
    np.testing.assert_allclose(sd, _vec(fx["re_sd"]), rtol=PAR_TOL)
    if "cor_params" in fx:
        _check_correlation(m, _vec(fx["cor_params"]))
    assert np.isnan(m.loglik) and m.converged


def _check_correlation(m, ref):
    """The correlation parameters, or -- where the data cannot tell them apart -- the
    correlation matrices they imply: an exponential range of 0.056 or 0.001 at unit time
    steps both mean a lag-1 correlation below 1e-7 (the likelihood is flat there and
    glmmPQL's nlme stops anywhere on the plateau)."""
    ours = np.asarray(list(m.cor_params.values()), float)
    if np.allclose(ours, ref, rtol=PAR_TOL, atol=PAR_TOL):
        return
    c = m.lmm.residual.correlation       # the working LMM's residual model
    mine = c.batch_matrices(c.unconstrained(ours))
    theirs = c.batch_matrices(c.unconstrained(ref))
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs, strict=True))
    assert gap <= PAR_TOL, (ours, ref, gap)


def test_pql_cbpp_matches_glmmpql():
    # MASS::glmmPQL(cbind(incidence, size - incidence) ~ period, random = ~ 1 | herd,
    #               family = binomial, data = cbpp)
    m = mm.glmm_pql("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    mm.datasets.load("cbpp"))
    np.testing.assert_allclose(m.fixef, [-1.327364, -1.016126, -1.149984, -1.605217],
                               atol=1e-6)
    np.testing.assert_allclose(m.se, [0.2303249, 0.3550067, 0.3793816, 0.4990020],
                               rtol=1e-5)
    assert m.sigma == pytest.approx(1.1845275, rel=1e-6)
    assert np.sqrt(m.varcorr.terms[0].cov[0, 0]) == pytest.approx(0.5563535, rel=1e-6)
