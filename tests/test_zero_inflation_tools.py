"""The FAQ's zero-inflation tests and model comparison, against R
(tests/fixtures/diag/zero_inflation.json: pscl::vuong, bbmle::AICctab, glmmTMB's anova,
expected zeros from the fitted means) and independent computations (a dynamic-programming
Poisson-binomial, multivariate normal densities per group, the Laplace sum)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.diagnostics.zero_inflation import poisson_binomial_pmf, poisson_binomial_tail

FIX = json.loads((Path(__file__).parent / "fixtures" / "diag" / "zero_inflation.json")
                 .read_text())
#: Our optimum vs glmmTMB's / pscl's (log-likelihoods agree to ~1e-6).
FIT_RTOL = 1e-5


@pytest.fixture(scope="module")
def fits():
    sal = mm.datasets.load("Salamanders")
    f = "count ~ spp + mined + (1 | site)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "pois": mm.glmmtmb(f, sal, family="poisson"),
            "zip": mm.glmmtmb(f, sal, ziformula="~spp + mined", family="poisson"),
            "nb": mm.glmmtmb(f, sal, family="nbinom2"),
            "zinb": mm.glmmtmb(f, sal, ziformula="~spp + mined", family="nbinom2"),
            "glm": mm.glmmtmb("count ~ spp + mined", sal, family="poisson"),
            "zip_glm": mm.glmmtmb("count ~ spp + mined", sal, ziformula="~spp + mined",
                                  family="poisson"),
        }


def test_poisson_binomial_against_dynamic_programming():
    p = np.random.default_rng(2).uniform(size=137)
    dp = np.array([1.0])
    for pi in p:                                   # the textbook recursion (test only)
        dp = np.convolve(dp, [1 - pi, pi])
    np.testing.assert_allclose(poisson_binomial_pmf(p), dp, atol=1e-14)
    assert poisson_binomial_pmf(np.zeros(5))[0] == pytest.approx(1.0)


def test_expected_zeros_against_r(fits):
    ref = FIX["expected_zeros"]
    for key in ("pois", "nb", "zip"):
        ez = mm.expected_zeros(fits[key])
        assert ez.observed == ref["observed"]
        assert ez.expected == pytest.approx(ref[key], rel=FIT_RTOL)
        assert ez.lower <= ez.expected <= ez.upper
    zip_ = mm.expected_zeros(fits["zip"])
    assert zip_.sd == pytest.approx(np.sqrt(ref["zip_var"]), rel=FIT_RTOL)
    assert mm.expected_zeros(fits["pois"]).p_value < 1e-10 < zip_.p_value


def test_expected_zeros_interval_by_simulation(fits):
    ez = mm.expected_zeros(fits["nb"], level=0.9)
    from mixedmodels.diagnostics.fitted_distribution import fitted_distribution

    p = fitted_distribution(fits["nb"]).prob_zero()
    draws = (np.random.default_rng(3).uniform(size=(20000, p.size)) < p).sum(axis=1)
    assert np.quantile(draws, 0.05) == pytest.approx(ez.lower, abs=1)
    assert np.quantile(draws, 0.95) == pytest.approx(ez.upper, abs=1)


def test_zero_inflation_lrt(fits):
    ref = FIX["zi_lrt"]
    t = mm.zero_inflation_lrt(fits["pois"], fits["zip"])
    assert t.df == ref["df"]
    assert t.statistic == pytest.approx(ref["chisq"], rel=FIT_RTOL)
    assert t.p_value_naive == pytest.approx(ref["p_naive"], rel=1e-3)
    assert t.p_value == pytest.approx(0.5 * stats.chi2.sf(t.statistic, 8)
                                      + 0.5 * stats.chi2.sf(t.statistic, 7))
    sal = mm.datasets.load("Salamanders")
    one = mm.glmmtmb("count ~ spp + mined + (1 | site)", sal, ziformula="~1",
                     family="poisson")
    t1 = mm.zero_inflation_lrt(fits["pois"], one)
    assert t1.df == 1 and t1.p_value == pytest.approx(0.5 * t1.p_value_naive)
    with pytest.raises(ValueError, match="no zero-inflation component"):
        mm.zero_inflation_lrt(fits["pois"], fits["nb"])
    with pytest.raises(ValueError, match="zero-inflated already"):
        mm.zero_inflation_lrt(fits["zip"], fits["zinb"])


def test_aic_table_against_bbmle(fits):
    ref = FIX["aictab"]
    tab = mm.aic_table(*(fits[k] for k in ("pois", "zip", "nb", "zinb")),
                       names=["pois", "zip", "nb", "zinb"])
    assert list(tab.index) == ref["names"]
    cols = ref["columns"]
    np.testing.assert_allclose(tab["logLik"], cols["logLik"], rtol=FIT_RTOL)
    np.testing.assert_allclose(tab["AICc"], cols["AICc"], rtol=FIT_RTOL)
    np.testing.assert_allclose(tab["dAICc"], cols["dAICc"], atol=1e-3)
    np.testing.assert_allclose(tab["weight"], cols["weight"], rtol=1e-3, atol=1e-12)
    np.testing.assert_array_equal(tab["df"], cols["df"])
    assert mm.aic_table(fits["pois"], criterion="BIC")["weight"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="criterion"):
        mm.aic_table(fits["pois"], criterion="DIC")


def test_vuong_against_pscl(fits):
    ref = FIX["vuong"]
    v = mm.vuong(fits["glm"], fits["zip_glm"])
    assert v.unit == "observation" and v.n_units == 644
    np.testing.assert_allclose(v.table["z"], [ref["z"]["raw"], ref["z"]["aic"],
                                              ref["z"]["bic"]], rtol=1e-4)
    assert v.p_value == pytest.approx(ref["p_raw"], rel=1e-3)
    assert v.table.loc["Raw", "favours"] == "model 2"


def test_glmm_contributions_are_the_laplace_likelihood_by_group(fits):
    for key in ("pois", "zinb", "glm"):
        c = mm.loglik_contributions(fits[key])
        assert c.sum() == pytest.approx(fits[key].loglik, rel=1e-10)
    c = mm.loglik_contributions(fits["zinb"])
    assert c.name == "site" and len(c) == 23
    v = mm.vuong(fits["zip"], fits["zinb"])
    assert v.unit == "site" and v.n_units == 23 and v.statistic < 0


def test_lmm_contributions_are_group_normal_densities():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
    c = mm.loglik_contributions(m)
    assert c.sum() == pytest.approx(m.loglik, rel=1e-10)
    V = m.varcorr.terms[0].cov
    X = m.design.X
    for subj in ("308", "335"):
        rows = (sleep["Subject"] == subj).to_numpy()
        Z = X[rows]                                  # (1, Days) is also Z here
        cov = Z @ V @ Z.T + m.sigma ** 2 * np.eye(rows.sum())
        ref = stats.multivariate_normal(X[rows] @ m.beta, cov).logpdf(sleep["Reaction"][rows])
        assert c[subj] == pytest.approx(ref, rel=1e-10)
    tmb = mm.glmmtmb("Reaction ~ Days + (Days | Subject)", sleep)
    # the Laplace approximation is exact for a Gaussian LMM: the same contributions
    np.testing.assert_allclose(mm.loglik_contributions(tmb).to_numpy(), c.to_numpy(),
                               rtol=1e-5)


def test_vuong_refuses_what_it_cannot_do(fits):
    pen = mm.datasets.load("Penicillin")
    m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, REML=False)
    with pytest.raises(NotImplementedError, match="independent units"):
        mm.loglik_contributions(m)
    sleep = mm.datasets.load("sleepstudy")
    with pytest.raises(ValueError, match="maximum-likelihood"):
        mm.loglik_contributions(mm.lmer("Reaction ~ Days + (1 | Subject)", sleep))
    with pytest.raises(ValueError, match="same independent units"):
        mm.vuong(fits["glm"], fits["zip"])
    with pytest.raises(TypeError, match="got int"):
        mm.vuong(fits["glm"], 3)
    g = mm.glmer("count ~ mined + (1 | site)", mm.datasets.load("Salamanders"),
                 family="poisson", nAGQ=5)
    with pytest.raises(NotImplementedError, match="nAGQ=1"):
        mm.loglik_contributions(g)
    assert isinstance(mm.aic_table(fits["glm"], fits["zip_glm"]), pd.DataFrame)
    with pytest.raises(TypeError, match="argument 2 is a str"):
        mm.aic_table(fits["glm"], "zip")


@pytest.mark.parametrize(("formula", "family", "data"), [
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial", "cbpp"),
    ("count ~ mined + (1 + mined | site)", "poisson", "Salamanders"),
    ("Reaction ~ Days + (Days | Subject)", "Gamma_log", "sleepstudy"),
])
def test_glmer_contributions_match_the_laplace_engine(formula, family, data):
    """glmer's per-group Laplace log-likelihoods (lme4's weights, PIRLS modes) against
    glmmtmb's (the general Laplace engine, an independent computation of the same
    likelihood), and their sum against the fit's log-likelihood."""
    df = mm.datasets.load(data)
    fam = mm.families.Gamma(link="log") if family == "Gamma_log" else family
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = mm.glmer(formula, df, family=fam)
        t = mm.glmmtmb(formula, df, family=fam)
    cg, ct = mm.loglik_contributions(g), mm.loglik_contributions(t)
    assert cg.sum() == pytest.approx(g.loglik, rel=1e-10)
    assert list(cg.index) == list(ct.index)
    # the two engines' optima differ at optimizer tolerance (~1e-6 in the loglik)
    np.testing.assert_allclose(cg.to_numpy(), ct.to_numpy(), rtol=0, atol=1e-4)
    assert abs(mm.vuong(g, t).statistic) < 1e-3


def test_zero_inflation_lrt_needs_the_same_family_and_response(fits):
    sal = mm.datasets.load("Salamanders")
    with pytest.raises(ValueError, match="different families"):
        mm.zero_inflation_lrt(fits["pois"], fits["zinb"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = mm.glmmtmb("count ~ spp + mined + (1 | site)",
                           sal.assign(count=sal["count"][::-1].to_numpy()), ziformula="~1",
                           family="poisson")
    with pytest.raises(ValueError, match="different responses"):
        mm.zero_inflation_lrt(fits["pois"], other)
    g = mm.glmer("count ~ spp + mined + (1 | site)", sal, family="poisson")
    t = mm.zero_inflation_lrt(g, fits["zip"])        # lme4's class against glmmTMB's
    assert t.statistic == pytest.approx(mm.zero_inflation_lrt(fits["pois"], fits["zip"])
                                        .statistic, rel=1e-4)
    with pytest.raises(ValueError, match="a number in"):
        mm.expected_zeros(fits["pois"], level="0.9")


def test_vuong_needs_the_same_response():
    sleep = mm.datasets.load("sleepstudy")
    a = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    b = mm.lmer("log(Reaction) ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.raises(ValueError, match="different responses"):
        mm.vuong(a, b)


def test_poisson_binomial_tails_keep_their_relative_accuracy():
    """Tails against the float recursion (sums of nonnegative terms: relative accuracy
    near machine precision), down to 1e-25 where the FFT pmf is noise; certain and
    impossible trials included."""
    rng = np.random.default_rng(1)
    p = np.r_[rng.uniform(0.2, 0.7, size=60), 0.0, 1.0, 1.0]
    dp = np.zeros(p.size + 1)
    dp[0] = 1.0
    for pi in p:
        dp[1:] = dp[1:] * (1 - pi) + dp[:-1] * pi
        dp[0] *= 1 - pi
    for k in (0, 1, 2, 3, 12, 29, 52, 60, 61, 62, 63):
        up, lo = dp[k:].sum(), dp[: k + 1].sum()
        assert poisson_binomial_tail(p, k, upper=True) == pytest.approx(up, rel=1e-9, abs=0)
        assert poisson_binomial_tail(p, k, upper=False) == pytest.approx(lo, rel=1e-9, abs=0)
