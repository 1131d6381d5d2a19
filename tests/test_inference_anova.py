"""Likelihood-ratio tests (mm.anova) and ordinary linear models (mm.lm) against R."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.inference import NotNestedError, RefitNote, boundary_pvalue
from test_inference_cases import arr, fixture

#: logLik, AIC, deviance, Chisq of fitted models vs R (optimizer differences ~1e-7)
LRT_ATOL = 1e-4
#: p-values: relative
P_RTOL = 1e-3
#: the issue quotes these to two or three decimals
QUOTED_ATOL = 5e-3


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def models(sleep):
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep, REML=False)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep, REML=False)
    m0 = mm.lm("Reaction ~ Days", sleep)
    return m2, m1, m0


def test_lm_matches_least_squares_and_R(sleep, models):
    m0 = models[2]
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    y = sleep["Reaction"].to_numpy()
    beta, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(m0.beta, beta, rtol=1e-12)
    n = len(y)
    sigma2_ml = rss[0] / n
    loglik = stats.norm.logpdf(y, X @ beta, np.sqrt(sigma2_ml)).sum()   # independent formula
    assert m0.loglik == pytest.approx(loglik, rel=1e-12)
    assert m0.loglik == pytest.approx(-950.15, abs=QUOTED_ATOL)
    assert m0.df == 3
    np.testing.assert_allclose(m0.se.to_numpy() ** 2,
                               np.diag(rss[0] / (n - 2) * np.linalg.inv(X.T @ X)), rtol=1e-10)


def test_weighted_lm_loglik_matches_density():
    df = mm.datasets.load("sleepstudy")
    w = 1.0 + (np.arange(len(df)) % 3)
    m = mm.lm("Reaction ~ Days", df, weights=w)
    X = np.column_stack([np.ones(len(df)), df["Days"]])
    y = df["Reaction"].to_numpy()
    W = np.diag(w)
    beta = np.linalg.solve(X.T @ W @ X, X.T @ W @ y)
    np.testing.assert_allclose(m.beta, beta, rtol=1e-10)
    s2 = np.sum(w * (y - X @ beta) ** 2) / len(y)
    loglik = stats.norm.logpdf(y, X @ beta, np.sqrt(s2 / w)).sum()
    assert m.loglik == pytest.approx(loglik, rel=1e-12)


def test_anova_reproduces_lme4_table(models):
    ref = fixture("anova")["sleep_m2_m1_m0"]
    m2, m1, m0 = models
    res = mm.anova(m2, m1, m0, names=["m2", "m1", "m0"])
    tab = res.table
    assert list(tab.index) == ref["models"]           # sorted by npar, as lme4
    np.testing.assert_array_equal(tab["npar"].to_numpy(), arr(ref["npar"]))
    for col, key in [("AIC", "AIC"), ("BIC", "BIC"), ("logLik", "logLik"),
                     ("deviance", "deviance")]:
        np.testing.assert_allclose(tab[col].to_numpy(), arr(ref[key]), atol=LRT_ATOL)
    chisq = arr(ref["Chisq"])
    np.testing.assert_allclose(tab["Chisq"].to_numpy()[1:], chisq[1:], atol=LRT_ATOL)
    np.testing.assert_allclose(tab["Pr(>Chisq)"].to_numpy()[1:], arr(ref["p"])[1:],
                               rtol=P_RTOL)
    # the numbers the issue quotes
    np.testing.assert_allclose(tab["logLik"], [-950.15, -897.04, -876.00], atol=QUOTED_ATOL)
    np.testing.assert_allclose(tab["Chisq"].to_numpy()[1:], [106.214, 42.075], atol=1e-3)
    text = str(res)
    assert "npar" in text and "Pr(>Chisq)" in text and "m2:" in text


def test_anova_refits_reml_with_a_note(sleep):
    ref = fixture("anova")
    r2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep)
    r1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    with pytest.warns(RefitNote, match="refitting model"):
        res = mm.anova(r2, r1)
    assert res.refitted
    np.testing.assert_allclose(res.table["logLik"].to_numpy(),
                               arr(ref["sleep_reml_refit"]["logLik"]), atol=LRT_ATOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RefitNote)      # same fixed effects: no note
        kept = mm.anova(r2, r1, refit=False)
    np.testing.assert_allclose(kept.table["logLik"].to_numpy(),
                               arr(ref["sleep_reml_norefit"]["logLik"]), atol=LRT_ATOL)
    np.testing.assert_allclose(kept.table["Chisq"].to_numpy()[1],
                               arr(ref["sleep_reml_norefit"]["Chisq"])[1], atol=LRT_ATOL)


def test_boundary_pvalue_is_half_the_chisquare_tail(models):
    m2, m1, _ = models
    plain = mm.anova(m2, m1).table["Pr(>Chisq)"].iloc[1]
    corrected = mm.anova(m2, m1, boundary=True).table["Pr(>Chisq)"].iloc[1]
    assert corrected == pytest.approx(plain / 2.0, rel=1e-12)
    # the mixture for df = 2: average of chi2(1) and chi2(2) tails
    assert boundary_pvalue(3.0, 2) == pytest.approx(
        0.5 * (stats.chi2.sf(3.0, 1) + stats.chi2.sf(3.0, 2)), rel=1e-12)
    assert boundary_pvalue(0.0, 1) == pytest.approx(1.0)


def test_anova_rejects_different_data(sleep, models):
    m2 = models[0]
    fewer = mm.lmer("Reaction ~ Days + (1|Subject)", sleep.iloc[:-5], REML=False)
    with pytest.raises(NotNestedError, match=r"180 observations.*175"):
        mm.anova(m2, fewer)
    other = sleep.assign(Reaction=sleep["Reaction"] * 2)
    scaled = mm.lmer("Reaction ~ Days + (1|Subject)", other, REML=False)
    with pytest.raises(NotNestedError, match="different responses"):
        mm.anova(m2, scaled)


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
def test_anova_rejects_non_nested_models(sleep):
    df = sleep.assign(x=np.sin(np.arange(len(sleep))), g=pd.Categorical(np.arange(180) % 6))
    a = mm.lmer("Reaction ~ Days + (1|Subject)", df, REML=False)
    b = mm.lmer("Reaction ~ x + (1|Subject) + (0+Days|Subject)", df, REML=False)
    with pytest.raises(NotNestedError, match="fixed effects"):
        mm.anova(a, b)
    c = mm.lmer("Reaction ~ Days + (1|g)", df, REML=False)
    d = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", df, REML=False)
    with pytest.raises(NotNestedError, match="random effects for 'g'"):
        mm.anova(c, d)
    with pytest.raises(ValueError, match="at least two"):
        mm.anova(a)


def test_anova_of_lm_and_lmer_nested_in_random_part(sleep, models):
    _, m1, m0 = models
    res = mm.anova(m0, m1)               # any order: sorted by npar
    assert list(res.table["npar"]) == [3, 4]
    assert res.table["Chisq"].iloc[1] == pytest.approx(2 * (m1.loglik - m0.loglik))
