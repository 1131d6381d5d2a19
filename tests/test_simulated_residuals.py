"""Simulation-based residual diagnostics (DHARMa's method).

* The tests' statistics against the R functions DHARMa calls, on the same numbers
  (tests/fixtures/diag/dharma_tests.json: ks.test, lmtest::dwtest, ape::Moran.I,
  car::leveneTest, binom.test, DHARMa's PIT bounds and ecdf);
* the simulation tests against direct computations from the simulation matrix;
* properties: residuals in [0, 1], reproducible, PIT exact for continuous responses,
  uniform under a model simulated from itself; power against overdispersion and
  zero-inflation; refits; aggregation; bad input.

The calibration study over >= 200 data sets is tests/test_residual_calibration.py (slow).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.diagnostics import residual_tests as rt
from mixedmodels.diagnostics.quantile_residuals import ecdf_residuals, pit_residuals
from mixedmodels.diagnostics.quantile_tests import bh_adjust, quantile_test

FIX = json.loads((Path(__file__).parent / "fixtures" / "diag" / "dharma_tests.json")
                 .read_text())
#: R's test statistics and p-values on the same vectors (numerical integration of the
#: exact Durbin-Watson distribution: 1e-9).
R_RTOL = 1e-9


# -- the R functions behind DHARMa's tests -------------------------------------------------
@pytest.mark.parametrize("key,vec,alt", [
    ("u50_two", "u50", "two.sided"), ("u50_less", "u50", "less"),
    ("u50_greater", "u50", "greater"), ("u300_two", "u300", "two.sided"),
    ("u300_greater", "u300", "greater")])
def test_ks_against_r(key, vec, alt):
    t = rt.ks_uniformity(FIX["ks"][vec], alt)
    ref = FIX["ks"][key]
    assert t.statistic == pytest.approx(ref["statistic"], rel=R_RTOL)
    assert t.p_value == pytest.approx(ref["p_value"], rel=R_RTOL)


@pytest.mark.parametrize("key,vec,alt", [
    ("x150_two", "x150", "two.sided"), ("x150_greater", "x150", "greater"),
    ("x40_two", "x40", "two.sided"), ("x40_greater", "x40", "greater"),
    ("x40_less", "x40", "less")])
def test_durbin_watson_against_lmtest(key, vec, alt):
    t = rt.durbin_watson(FIX["dw"][vec], alt)
    ref = FIX["dw"][key]
    assert t.statistic == pytest.approx(ref["statistic"], rel=R_RTOL)
    assert t.p_value == pytest.approx(ref["p_value"], rel=R_RTOL)
    assert rt.durbin_watson(FIX["ks"]["u50"]).p_value == pytest.approx(
        FIX["dw"]["u50_two"]["p_value"], rel=R_RTOL)


def test_durbin_watson_exact_distribution_by_simulation():
    """Imhof's integral against Monte Carlo of the DW statistic under independence."""
    rng = np.random.default_rng(5)
    n, reps = 30, 40000
    e = rng.standard_normal((reps, n))
    e -= e.mean(axis=1, keepdims=True)
    dws = np.sum(np.diff(e, axis=1) ** 2, axis=1) / np.sum(e * e, axis=1)
    r = rng.standard_normal(n)
    t = rt.durbin_watson(r, "greater")                 # P(DW < observed)
    mc = np.mean(dws < t.statistic)
    assert abs(t.p_value - mc) < 4 * np.sqrt(mc * (1 - mc) / reps) + 1e-3


def test_moran_levene_binomial_against_r():
    mo = FIX["moran"]
    xy = np.asarray(mo["coords"])
    D = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2))
    W = np.where(D > 0, 1.0 / np.where(D > 0, D, 1.0), 0.0)
    t = rt.morans_i(mo["x"], W)
    assert t.statistic == pytest.approx(mo["observed"], rel=R_RTOL)
    assert t.details["sd"] == pytest.approx(mo["sd"], rel=R_RTOL)
    assert t.p_value == pytest.approx(mo["p_value"], rel=R_RTOL)
    lv = FIX["levene"]
    t = rt.levene(lv["y"], lv["group"])
    assert t.statistic == pytest.approx(lv["F"], rel=R_RTOL)
    assert t.p_value == pytest.approx(lv["p_value"], rel=R_RTOL)
    b = FIX["binom"]
    r = np.r_[np.full(4, 0.001), np.full(3, 0.999), np.full(b["n"] - 7, 0.5)]
    t = rt.binomial_outliers(r, 250)
    assert t.statistic == b["k"]
    assert t.p_value == pytest.approx(b["p_value"], rel=R_RTOL)


def test_pit_and_ecdf_residuals_against_dharma():
    p = FIX["pit"]
    sims, obs = np.asarray(p["simulated"], float), np.asarray(p["observed"], float)
    res = pit_residuals(sims, obs, np.random.default_rng(0))
    lower, upper = np.asarray(p["lower"]), np.asarray(p["upper"])
    assert np.all(res >= lower) and np.all(res <= upper)
    assert np.all(res[lower == upper] == lower[lower == upper])
    # the randomization is uniform between the bounds
    many = np.stack([pit_residuals(sims, obs, np.random.default_rng(s)) for s in range(400)])
    ties = lower < upper
    frac = (many[:, ties] - lower[ties]) / (upper - lower)[ties]
    assert stats.kstest(frac.ravel()[:4000], "uniform").pvalue > 1e-3
    tr = FIX["traditional"]
    np.testing.assert_allclose(ecdf_residuals(np.asarray(tr["simulated"]),
                                              np.asarray(tr["observed"]), False, None),
                               tr["residuals"], rtol=1e-12)


def test_quantile_score_test():
    rng = np.random.default_rng(11)
    x = rng.uniform(size=400)
    null = [quantile_test(rng.uniform(size=400), x).p_value for _ in range(200)]
    assert 0.02 < np.mean(np.asarray(null) < 0.1) < 0.2          # about nominal
    shifted = np.clip(rng.uniform(size=400) + 0.6 * (x - 0.5), 0, 1)   # trend in x
    assert quantile_test(shifted, x).p_value < 1e-4
    np.testing.assert_allclose(bh_adjust([0.01, 0.04, 0.03]), [0.03, 0.04, 0.04])


# -- residuals of fitted models ------------------------------------------------------------
@pytest.fixture(scope="module")
def sal():
    return mm.datasets.load("Salamanders")


@pytest.fixture(scope="module")
def sal_fits(sal):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = mm.glmmtmb("count ~ spp + mined + (1 | site)", sal, family="poisson")
        zinb = mm.glmmtmb("count ~ spp + mined + (1 | site)", sal, ziformula="~spp + mined",
                          family="nbinom2")
    return pois, zinb


def test_residuals_basic_properties(sal_fits):
    pois, _ = sal_fits
    r = mm.simulate_residuals(pois, n_sim=100, seed=1)
    again = mm.simulate_residuals(pois, n_sim=100, seed=1)
    np.testing.assert_array_equal(r.scaled, again.scaled)
    assert r.simulated.shape == (pois.nobs, 100) and r.integer
    assert r.residuals.between(0, 1).all()
    assert r.residuals.index.equals(pois.design.frame.index)
    other = mm.simulate_residuals(pois, n_sim=100, seed=1, simulate_re="unconditional")
    assert not np.array_equal(r.simulated, other.simulated)


def test_simulation_tests_by_direct_computation(sal_fits):
    pois, _ = sal_fits
    r = mm.simulate_residuals(pois, n_sim=120, seed=2)
    S, y, mu = r.simulated, r.observed, r.fitted
    v = np.var(S, ddof=1)
    obs = np.var(y - mu, ddof=1) / v
    sim = np.var(S - mu[:, None], axis=0, ddof=1) / v
    t = r.test_dispersion()
    assert t.statistic == pytest.approx(obs / sim.mean(), rel=1e-12)
    assert t.p_value == min(1.0, 2 * min(np.mean(sim <= obs), np.mean(sim >= obs)))
    z = r.test_zero_inflation("greater")
    zeros = (S == 0).sum(axis=0)
    assert z.statistic == pytest.approx((y == 0).sum() / zeros.mean(), rel=1e-12)
    assert z.p_value == np.mean(zeros >= (y == 0).sum())
    # the Poisson GLMM misses the Salamanders' overdispersion and zeros
    assert t.statistic > 2 and t.p_value < 0.01 and z.p_value < 0.01
    assert r.test_uniformity().p_value < 0.01


def test_a_correct_model_passes(sal_fits):
    _, zinb = sal_fits
    r = mm.simulate_residuals(zinb, n_sim=200, seed=3)
    for t in (r.test_uniformity(), r.test_dispersion(), r.test_zero_inflation(),
              r.test_outliers(), r.test_quantiles(), r.test_categorical("spp")):
        assert t.p_value > 0.01, t


def test_residuals_are_uniform_when_the_model_is_true():
    """Data simulated from a fitted Poisson GLMM at its own estimates: the scaled residuals
    against the true (simulating) model are exactly uniform."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(size=400)
    b = rng.normal(scale=0.5, size=40)
    df = pd.DataFrame({"y": rng.poisson(np.exp(0.3 + 0.5 * x + b[g])), "x": x,
                       "g": g.astype(str)})
    m = mm.glmer("y ~ x + (1 | g)", df, family="poisson")
    r = mm.simulate_residuals(m, n_sim=300, seed=4)
    assert r.test_uniformity().p_value > 0.01
    assert r.test_dispersion().p_value > 0.01


def test_binomial_counts_scale():
    cbpp = mm.datasets.load("cbpp")
    m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    r = mm.simulate_residuals(m, n_sim=60, seed=5)
    np.testing.assert_array_equal(r.observed, cbpp["incidence"].to_numpy())
    assert np.all(r.simulated <= cbpp["size"].to_numpy()[:, None])
    np.testing.assert_allclose(r.fitted, m.fitted().to_numpy() * cbpp["size"].to_numpy())


def test_lmer_refit_and_aggregation():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    r = mm.simulate_residuals(m, n_sim=40, seed=6, refit=True)
    assert r.refit and r.method == "traditional" and r.refit_residuals.shape == (180, 40)
    t = r.test_dispersion()
    assert t.statistic == pytest.approx(
        r.pearson_chisq / np.mean(r.refit_pearson), rel=1e-12)
    assert np.isclose(r.pearson_chisq, np.sum(m.residuals("pearson") ** 2))
    plain = mm.simulate_residuals(m, n_sim=80, seed=6)
    by_day = plain.recalculate("Days")
    assert by_day.nobs == 10 and by_day.simulated.shape == (10, 80)
    np.testing.assert_allclose(by_day.observed,
                               sleep.groupby("Days", sort=False)["Reaction"].sum().to_numpy())
    dw = by_day.test_temporal_autocorrelation(np.arange(10))
    assert dw.statistic == pytest.approx(rt.durbin_watson(by_day.scaled).statistic)
    with pytest.raises(ValueError, match="unique time values"):
        plain.test_temporal_autocorrelation("Days")
    cat = plain.test_categorical("Subject")
    assert list(cat.details["groups"].index[:2]) == ["308", "309"]
    assert cat.details["uniformity_p"] <= 1


def test_spatial_and_column_inputs(sal_fits, sal):
    pois, _ = sal_fits
    r = mm.simulate_residuals(pois, n_sim=50, seed=7)
    by_site = r.recalculate("site")
    rng = np.random.default_rng(0)
    xy = rng.uniform(size=(by_site.nobs, 2))
    t = by_site.test_spatial_autocorrelation(xy[:, 0], xy[:, 1])
    D = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2))
    W = np.where(D > 0, 1 / np.where(D > 0, D, 1), 0)
    assert t.p_value == pytest.approx(rt.morans_i(by_site.scaled, W).p_value)
    with pytest.raises(ValueError, match="unique locations"):
        r.test_spatial_autocorrelation(np.zeros(r.nobs), np.zeros(r.nobs))
    with pytest.raises(KeyError, match="not a column"):
        r.test_categorical("nope")
    with pytest.raises(ValueError, match="one value per row"):
        r.test_quantiles(np.arange(3))
    assert r.test_quantiles("cover").p_value <= 1


def test_outlier_test_types(sal_fits):
    pois, _ = sal_fits
    r = mm.simulate_residuals(pois, n_sim=60, seed=9)
    b = r.test_outliers(type="binomial")
    boot = r.test_outliers(type="bootstrap", n_boot=30)
    assert b.statistic == np.sum((r.scaled < 1 / 61) | (r.scaled > 60 / 61))
    assert boot.statistic == pytest.approx(np.sum((r.scaled == 0) | (r.scaled == 1)))
    assert boot.details["bootstrap"].shape == (30,)


def test_bad_input(sal_fits):
    pois, _ = sal_fits
    with pytest.raises(ValueError, match="n_sim"):
        mm.simulate_residuals(pois, n_sim=1)
    with pytest.raises(ValueError, match="simulate_re"):
        mm.simulate_residuals(pois, simulate_re="marginal")
    with pytest.raises(TypeError, match="fitted lmer"):
        mm.simulate_residuals(object())
    r = mm.simulate_residuals(pois, n_sim=20)
    with pytest.raises(ValueError, match="alternative"):
        r.test_uniformity("bigger")
    with pytest.raises(ValueError, match="margin"):
        r.test_outliers(margin="left")


def test_calibrated_rank_is_uniform_for_exchangeable_p_values():
    """Ties broken at random: with B + 1 exchangeable (discrete, tied) p-values the rank is
    uniform on {1, .., B + 1} / (B + 1)."""
    from mixedmodels.diagnostics.calibration import calibrated_rank

    rng = np.random.default_rng(3)
    B, reps = 9, 20000
    values = rng.integers(0, 4, size=(reps, B + 1)) / 4.0      # heavy ties
    ranks = np.array([calibrated_rank(v[0], v[1:], rng) for v in values])
    freq = np.bincount(np.rint(ranks * (B + 1)).astype(int), minlength=B + 2)[1:]
    expected = reps / (B + 1)
    assert stats.chisquare(freq, np.full(B + 1, expected)).pvalue > 1e-3
    assert np.isnan(calibrated_rank(0.5, np.array([np.nan]), rng))


def test_calibrate_reruns_the_tests_on_bootstrap_refits():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(12), 6)
    x = rng.normal(size=g.size)
    df = pd.DataFrame({"y": rng.poisson(np.exp(0.2 + 0.4 * x + rng.normal(0, .5, 12)[g])),
                       "x": x, "g": np.char.add("s", g.astype(str))})
    m = mm.glmer("y ~ x + (1 | g)", df, family="poisson")
    r = mm.simulate_residuals(m, n_sim=40, seed=2)
    c = r.calibrate(n_boot=6, tests={"dispersion": {"alternative": "greater"},
                                     "uniformity": {}}, seed=5)
    assert list(c.table.index) == ["dispersion", "uniformity"] and c.n_boot == 6
    assert c.table.loc["uniformity", "p_value"] == r.test_uniformity().p_value
    assert c.table.loc["dispersion", "statistic"] == r.test_dispersion("greater").statistic
    # the calibrated p-value is the observed p-value's rank among the bootstrap ones
    for name in c.table.index:
        p, boot = c.table.loc[name, "p_value"], c.bootstrap[name].to_numpy()
        lo = (1 + np.sum(boot < p)) / 7
        hi = (1 + np.sum(boot <= p)) / 7
        assert lo <= c.table.loc[name, "p_calibrated"] <= hi
    again = r.calibrate(n_boot=6, tests=["dispersion", "uniformity"], seed=5)
    np.testing.assert_array_equal(again.bootstrap["uniformity"], c.bootstrap["uniformity"])
    assert "calibrated by 6" in str(c)
    with pytest.raises(ValueError, match="tests must name"):
        r.calibrate(n_boot=2, tests=["normality"])
    with pytest.raises(ValueError, match="n_boot"):
        r.calibrate(n_boot=0)
    with pytest.raises(ValueError, match="no model"):
        r.recalculate("g").calibrate(n_boot=2)
