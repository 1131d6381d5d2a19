"""glmmtmb: results against direct computations, lme4-class equivalences, bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels._errors import DataError, FormulaError

#: Monte-Carlo tolerance of simulated means, in standard errors of the mean.
MC_Z = 5.0


@pytest.fixture(scope="module")
def sal():
    return mm.datasets.load("Salamanders")


@pytest.fixture(scope="module")
def zinb(sal):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb("count ~ spp + mined + (1 | site)", sal, family="nbinom2",
                          ziformula="~ mined")


def test_predictions_fit_together(zinb, sal):
    mu = zinb.predict(type="conditional").to_numpy()
    pz = zinb.predict(type="zprob").to_numpy()
    np.testing.assert_allclose(zinb.predict(type="response"), (1 - pz) * mu, rtol=1e-12)
    np.testing.assert_allclose(zinb.fitted(), (1 - pz) * mu, rtol=1e-12)
    np.testing.assert_allclose(np.exp(zinb.predict(type="link")), mu, rtol=1e-12)
    np.testing.assert_allclose(1 / (1 + np.exp(-zinb.predict(type="zlink"))), pz, rtol=1e-12)
    # newdata = the fitting rows gives the same predictions
    for typ in ("link", "response", "zprob", "disp"):
        np.testing.assert_allclose(zinb.predict(sal, type=typ), zinb.predict(type=typ),
                                   rtol=1e-12, atol=1e-14)
    # population level: X beta only
    X = zinb.design.X
    np.testing.assert_allclose(zinb.predict(sal, re_form="~0"), X @ zinb.fixef.to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(zinb.predict(type="disp"), zinb.sigma, rtol=1e-12)


def test_residuals_are_direct(zinb, sal):
    y = sal["count"].to_numpy(float)
    mu = zinb.predict(type="conditional").to_numpy()
    pz = zinb.predict(type="zprob").to_numpy()
    phi = zinb.sigma
    mean = (1 - pz) * mu
    var_nb = mu * (1 + mu / phi)
    var = (1 - pz) * (var_nb + pz * mu * mu)       # zero-inflated variance, by hand
    np.testing.assert_allclose(zinb.residuals("response"), y - mean, rtol=1e-10)
    np.testing.assert_allclose(zinb.residuals("pearson"), (y - mean) / np.sqrt(var),
                               rtol=1e-10)
    od = zinb.overdispersion()
    assert od["chisq"] == pytest.approx(np.sum((y - mean) ** 2 / var), rel=1e-10)
    assert od["rdf"] == zinb.nobs - zinb.df


def test_simulate_matches_the_fitted_mean(zinb):
    sims = zinb.simulate(400, seed=1, re_form=None)
    assert sims.shape == (zinb.nobs, 400)
    m = sims.to_numpy().mean(axis=1)
    total, expected = m.sum(), zinb.fitted().sum()
    se = sims.to_numpy().sum(axis=0).std() / np.sqrt(400)
    assert abs(total - expected) < MC_Z * se
    with pytest.raises(ValueError, match="nsim"):
        zinb.simulate(0)


def test_vcov_full_and_intervals(zinb):
    V = zinb.vcov_full
    assert V.index[0] == "cond~Intercept" and "zi~mined[T.no]" in V.index
    assert any(lab.startswith("theta_") for lab in V.index)
    np.testing.assert_allclose(V.to_numpy(), V.to_numpy().T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(V.to_numpy()) > 0)
    ci = zinb.confint()
    se = np.sqrt(np.diag(V))
    np.testing.assert_allclose(ci.iloc[:, 1] - ci.iloc[:, 0], 2 * stats.norm.ppf(0.975) * se)
    np.testing.assert_allclose(zinb.se, se[:zinb.design.p], rtol=1e-12)


def test_summary_has_glmmtmbs_sections(zinb):
    text = str(zinb.summary())
    for part in ("Family: nbinom2", "Zero inflation:", "Conditional model:",
                 "Zero-inflation model:", "Dispersion parameter for nbinom2"):
        assert part in text
    assert zinb.aic == pytest.approx(zinb.objective + 2 * zinb.df)


def test_pickle_round_trip(zinb, sal):
    m2 = pickle.loads(pickle.dumps(zinb))
    assert m2.objective == zinb.objective
    np.testing.assert_array_equal(m2.predict(sal.head(20), type="response"),
                                  zinb.predict(sal.head(20), type="response"))


def test_gaussian_equals_lmer():
    """A Gaussian glmmtmb fit is lmer's by ML, and by REML with REML=True."""
    df = mm.datasets.load("sleepstudy")
    for reml in (False, True):
        m = mm.lmer("Reaction ~ Days + (Days | Subject)", df, REML=reml)
        t = mm.glmmtmb("Reaction ~ Days + (Days | Subject)", df, REML=reml)
        assert t.objective == pytest.approx(m.objective, abs=1e-6)
        np.testing.assert_allclose(t.fixef, m.fixef, rtol=1e-6)
        np.testing.assert_allclose(t.se, m.se, rtol=1e-4)
        assert t.sigma == pytest.approx(m.sigma, rel=1e-5)
        np.testing.assert_allclose(t.varcorr.terms[0].cov, m.varcorr.terms[0].cov,
                                   rtol=1e-4)


def test_binomial_forms_agree_and_equal_glmer():
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    a = mm.glmmtmb("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                   family="binomial")
    b = mm.glmmtmb("p ~ period + (1 | herd)", cbpp.assign(p=cbpp.incidence / cbpp["size"]),
                   family="binomial", weights="size")
    assert a.objective == pytest.approx(g.objective, abs=1e-5)
    assert b.objective == pytest.approx(a.objective, abs=1e-8)
    np.testing.assert_allclose(a.fixef, g.fixef, rtol=1e-4)


def test_anova_between_classes(sal):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = mm.glmer("count ~ spp + mined + (1 | site)", sal, family="poisson")
        nb = mm.glmmtmb("count ~ spp + mined + (1 | site)", sal, family="nbinom2")
    tab = mm.anova(p, nb).table
    assert tab["Chisq"].iloc[1] == pytest.approx(p.objective - nb.objective, rel=1e-8)
    assert nb.update(family="nbinom1").family_name == "nbinom1"


def test_family_parameters_and_sigma():
    rng = np.random.default_rng(4)
    n, g = 300, 15
    grp = rng.integers(0, g, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 0.5, g)[grp] + 0.8 * rng.standard_t(4, n)
    t = mm.glmmtmb("y ~ x + (1 | grp)", pd.DataFrame({"y": y, "x": x, "grp": grp}),
                   family="t")
    assert set(t.family_params) == {"df"} and 1.5 < t.family_params["df"] < 30
    assert t.sigma == pytest.approx(np.exp(t.fixef_disp.iloc[0]), rel=1e-12)


# -- bad input -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    n = 120
    g = rng.integers(0, 10, n)
    return pd.DataFrame({"y": rng.poisson(2, n).astype(float), "x": rng.normal(size=n),
                         "g": [f"g{i}" for i in g], "v": rng.uniform(0.05, 0.95, n)})


@pytest.mark.parametrize("kw, data_change, match", [
    ({"family": "poisson"}, {"y": -1.0}, "negative"),
    ({"family": "nbinom2"}, {"y": 1.5}, "integer|whole"),
    ({"family": "beta"}, {"v": 1.0}, "ordbeta|transform|\\(0, 1\\)"),
    ({"family": "Gamma"}, {"v": 0.0}, "ziGamma"),
    ({"family": "truncated_poisson"}, {"y": 0.0}, "ziformula|hurdle"),
])
def test_family_checks_name_the_response(counts, kw, data_change, match):
    data = counts.copy()
    col, val = next(iter(data_change.items()))
    data.loc[0, col] = val
    formula = ("v" if col == "v" else "y") + " ~ x + (1 | g)"
    with pytest.raises(DataError, match=match):
        mm.glmmtmb(formula, data, **kw)


@pytest.mark.parametrize("kw, match", [
    ({"family": "poisson", "dispformula": "~ x"}, "no dispersion parameter"),
    ({"family": "gaussian", "ziformula": "~1"}, "real line"),
    ({"family": "nbinom2", "dispformula": "~0"}, "only for the gaussian"),
    ({"family": "ziGamma"}, "ziformula"),
    ({"family": "poisson", "ziformula": "y ~ x"}, "one-sided"),
    ({"family": "no_such_family"}, "unknown family"),
    ({"family": "poisson", "link": "cauchit"}, "link"),
])
def test_model_errors(counts, kw, match):
    with pytest.raises(FormulaError, match=match):
        mm.glmmtmb("y ~ x + (1 | g)", counts.assign(v=counts.v + 0.1), **kw)


def test_missing_column_in_ziformula_is_named(counts):
    with pytest.raises(DataError, match="ziformula"):
        mm.glmmtmb("y ~ x + (1 | g)", counts, family="poisson", ziformula="~ nothere")


def test_reml_must_be_boolean(counts):
    with pytest.raises(TypeError, match="REML"):
        mm.glmmtmb("y ~ x + (1 | g)", counts, family="poisson", REML="no")


def test_extreme_zero_inflation_is_reported():
    rng = np.random.default_rng(2)
    n = 400
    g = rng.integers(0, 20, n)
    x = rng.normal(size=n)
    # means around exp(2): Poisson zeros are rare, excess zeros absent
    y = rng.poisson(np.exp(2 + 0.4 * x + rng.normal(0, 0.3, 20)[g]))
    with pytest.warns(mm.MixedModelsWarning, match="zero-inflation probability"):
        mm.glmmtmb("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}),
                   family="poisson", ziformula="~1")
