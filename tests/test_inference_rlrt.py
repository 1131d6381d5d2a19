"""Exact RLRT (RLRsim): the statistic against R, the eigenvalues against RLRsim's formula,
and the simulated null distribution against brute-force refits under the null."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.inference.rlrt import _eigenvalues, _tested_term, rlrt_null_sample
from test_inference_cases import arr, fixture

#: restricted log-likelihoods of fits vs R
STAT_ATOL = 1e-4
#: Monte Carlo checks, in standard errors
MC_SE = 4.0

REF = fixture("rlrt")


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


def test_rlrt_statistic_of_the_issue(sleep):
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    res = mm.rlrt(m2, m1, seed=1)
    assert res.statistic == pytest.approx(REF["rlrt_slope_m2_vs_m1"], abs=STAT_ATOL)
    assert res.statistic == pytest.approx(42.796, abs=5e-4)          # the issue's number
    assert res.p_value == 0.0 and res.null_sample.size == 10000
    assert "0+Days|Subject" in res.term.replace(" ", "")


def test_rlrt_against_lm_uses_rlrsims_null_likelihood(sleep):
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    m0 = mm.lm("Reaction ~ Days", sleep)
    assert m0.restricted_loglik == pytest.approx(REF["reml_H0_half"], rel=1e-12)
    res = mm.rlrt(m1, m0, nsim=100, seed=1)
    assert res.statistic == pytest.approx(REF["rlrt_intercept_vs_lm"], abs=STAT_ATOL)


def test_eigenvalues_match_rlrsim(sleep):
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    t = _tested_term(m2, m1)
    np.testing.assert_allclose(_eigenvalues(m2.design, t), arr(REF["mu_slope"]),
                               rtol=1e-10, atol=1e-12)


def test_ml_fits_are_refitted_by_reml(sleep):
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep, REML=False)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep, REML=False)
    with pytest.warns(mm.inference.RefitNote, match="REML"):
        res = mm.rlrt(m2, m1, nsim=10)
    assert res.statistic == pytest.approx(REF["rlrt_slope_m2_vs_m1"], abs=STAT_ATOL)


def test_rlrt_rejects_other_comparisons(sleep):
    m2 = mm.lmer("Reaction ~ Days + (Days|Subject)", sleep)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    with pytest.raises(mm.MixedModelsError, match="one variance"):
        mm.rlrt(m2, m1)
    mx = mm.lmer("Reaction ~ 1 + (1|Subject)", sleep)
    with pytest.raises(mm.MixedModelsError, match="fixed effects"):
        mm.rlrt(m2, mx)


def test_null_distribution_matches_brute_force_refits(sleep):
    """With one random effect the simulated distribution is exact: refitting the model and
    the null linear model to responses simulated under the null must reproduce it."""
    m0 = mm.lm("Reaction ~ Days", sleep)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    sims = m0.simulate(300, seed=9).to_numpy()
    brute = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        for y in sims.T:
            full = m1.refit(y, check_conv=False)
            brute.append(max(0.0, 2 * (full.loglik - m0.refit(y).restricted_loglik)))
    brute = np.array(brute)
    t = m1.design.terms[0]
    exact = rlrt_null_sample(_eigenvalues(m1.design, t), m1.nobs, m1.design.p, 20000,
                             np.random.default_rng(4))
    n = brute.size
    zero_b, zero_e = np.mean(brute < 1e-6), np.mean(exact < 1e-6)
    assert abs(zero_b - zero_e) < MC_SE * np.sqrt(zero_e * (1 - zero_e) / n)
    q90 = np.quantile(exact, 0.9)
    assert abs(np.mean(brute > q90) - 0.1) < MC_SE * np.sqrt(0.09 / n)
