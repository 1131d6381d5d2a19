"""Data out of a fit: tidy / glance (broom.mixed's conventions), to_dict (JSON), get_matrix
(lme4's getME), and the ranef index of numeric grouping factors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

import mixedmodels as mm

DDF = json.loads((Path(__file__).parent / "fixtures" / "inference" / "ddf.json").read_text())
#: lmerTest's Satterthwaite df against ours: both are finite-difference Hessians.
DF_RTOL = 1e-4
EST_RTOL = 1e-6


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def m(sleep):
    return mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def gm():
    return mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    mm.datasets.load("cbpp"))


# -- tidy ---------------------------------------------------------------------------------
def test_tidy_fixed_matches_lmertest_satterthwaite(m):
    ref = DDF["ss_reml"]["satterthwaite"]
    t = m.tidy(effects="fixed")
    assert list(t.columns) == ["effect", "component", "group", "term", "estimate",
                               "std_error", "statistic", "df", "p_value"]
    assert list(t["term"]) == ["(Intercept)", "Days"]          # R's names by default
    assert (t["effect"] == "fixed").all() and (t["component"] == "cond").all()
    assert t["group"].isna().all()
    np.testing.assert_allclose(t["estimate"], ref["estimate"], rtol=EST_RTOL)
    np.testing.assert_allclose(t["std_error"], ref["se"], rtol=1e-5)
    np.testing.assert_allclose(t["statistic"], ref["t"], rtol=1e-5)
    np.testing.assert_allclose(t["df"], ref["df"], rtol=DF_RTOL)
    np.testing.assert_allclose(t["p_value"], ref["p"], rtol=1e-3)
    py = m.tidy(effects="fixed", names="python")
    assert list(py["term"]) == list(m.fixef.index)


def test_tidy_ran_pars_broom_names_and_values(sleep, m):
    t = m.tidy(effects="ran_pars")
    assert list(t["term"]) == ["sd__(Intercept)", "cor__(Intercept).Days", "sd__Days",
                               "sd__Observation"]
    assert list(t["group"]) == ["Subject", "Subject", "Subject", "Residual"]
    vc = m.varcorr.terms[0]
    np.testing.assert_allclose(t["estimate"], [vc.sd[0], vc.corr[1, 0], vc.sd[1], m.sigma])
    assert t[["std_error", "statistic", "p_value"]].isna().all().all()
    v = m.tidy(effects="ran_pars", scales="vcov")
    assert list(v["term"]) == ["var__(Intercept)", "cov__(Intercept).Days", "var__Days",
                               "var__Observation"]
    np.testing.assert_allclose(v["estimate"], [vc.cov[0, 0], vc.cov[1, 0], vc.cov[1, 1],
                                               m.sigma ** 2])
    # repeated grouping factor: lme4's VarCorr labels Subject, Subject.1
    u = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep)
    tu = u.tidy(effects="ran_pars")
    assert list(tu["group"]) == ["Subject", "Subject.1", "Residual"]
    assert list(tu["term"]) == ["sd__(Intercept)", "sd__Days", "sd__Observation"]


def test_tidy_three_effects_lower_triangle_order():
    rng = np.random.default_rng(3)
    n, g = 600, 30
    d = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "g": rng.integers(0, g, n)})
    u = rng.normal(size=(g, 3)) @ np.array([[1.0, 0.3, 0.2], [0, 0.8, 0.3], [0, 0, 0.7]])
    d["y"] = d.a + u[d.g, 0] + u[d.g, 1] * d.a + u[d.g, 2] * d.b + rng.normal(size=n)
    fit = mm.lmer("y ~ a + (a + b | g)", d)
    t = fit.tidy(effects="ran_pars")
    assert list(t["term"][:6]) == ["sd__(Intercept)", "cor__(Intercept).a",
                                   "cor__(Intercept).b", "sd__a", "cor__a.b", "sd__b"]
    c = fit.varcorr.terms[0].corr
    np.testing.assert_allclose(t["estimate"][[1, 2, 4]], [c[1, 0], c[2, 0], c[2, 1]])


def test_tidy_ran_vals_and_coefs(m):
    t = m.tidy(effects="ran_vals", conf_int=True)
    re = m.ranef(cond_var=True)["Subject"]
    assert list(t.columns) == ["effect", "component", "group", "level", "term", "estimate",
                               "std_error", "conf_low", "conf_high"]
    assert len(t) == 2 * len(re)
    first = t[t["term"] == "(Intercept)"]
    np.testing.assert_allclose(first["estimate"], re["Intercept"])
    np.testing.assert_allclose(first["std_error"], re["Intercept_condsd"])
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(t["conf_high"] - t["estimate"], z * t["std_error"])
    c = m.tidy(effects="ran_coefs")
    days = c[c["term"] == "Days"]["estimate"].to_numpy()
    np.testing.assert_allclose(days, m.fixef["Days"] + re["Days"].to_numpy())
    with pytest.raises(ValueError, match="Wald"):
        m.tidy(effects="ran_vals", conf_int=True, conf_method="profile")


def test_tidy_conf_int_wald_and_profile(m):
    t = m.tidy(conf_int=True)
    fx = t[t["effect"] == "fixed"]
    ci = m.confint(method="wald")
    np.testing.assert_allclose(fx["conf_low"], ci["lower"])
    np.testing.assert_allclose(fx["conf_high"], ci["upper"])
    assert t[t["effect"] == "ran_pars"]["conf_low"].isna().all()   # no Wald for variances


@pytest.mark.slow
def test_tidy_profile_intervals_follow_the_rows(m):
    t = m.tidy(conf_int=True, conf_method="profile")
    ci = m.confint()
    rp = t[t["effect"] == "ran_pars"]
    np.testing.assert_allclose(rp["conf_low"], ci["lower"].to_numpy()[:4], rtol=1e-6)


def test_tidy_glmm_z_tests(gm):
    t = gm.tidy()
    fx = t[t["effect"] == "fixed"]
    assert "df" not in t.columns
    z = gm.fixef.to_numpy() / gm.se.to_numpy()
    np.testing.assert_allclose(fx["statistic"], z)
    np.testing.assert_allclose(fx["p_value"], 2 * stats.norm.sf(np.abs(z)))
    rp = t[t["effect"] == "ran_pars"]
    assert list(rp["term"]) == ["sd__(Intercept)"] and list(rp["group"]) == ["herd"]


def test_tidy_bad_arguments(m):
    for kw, match in [({"effects": "random"}, "effect"), ({"names": "R"}, "names"),
                      ({"scales": "var"}, "scales"), ({"conf_method": "exact"}, "conf_method"),
                      ({"conf_level": 95}, "conf_level")]:
        with pytest.raises(ValueError, match=match):
            m.tidy(**kw)


# -- glance -------------------------------------------------------------------------------
def test_glance_as_broom_mixed(m, gm, sleep):
    g = m.glance()
    assert list(g.columns) == ["nobs", "sigma", "logLik", "AIC", "BIC", "REMLcrit",
                               "df_residual"]
    row = g.iloc[0]
    assert row["REMLcrit"] == pytest.approx(1743.6282719600, abs=1e-5)     # lme4
    assert row["df_residual"] == 180 - 6 and row["nobs"] == 180
    ml = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False).glance()
    assert "deviance" in ml.columns and "REMLcrit" not in ml.columns
    assert ml["deviance"].iloc[0] == pytest.approx(1751.9393444647, abs=1e-5)  # lme4
    # GLMM: lme4's deviance() is the sum of squared deviance residuals
    gg = gm.glance().iloc[0]
    y, mu = gm.design.y, gm.solution.mu
    n = gm.objective_function.pirls.prior
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = 2 * n * (np.where(y > 0, y * np.log(y / mu), 0)
                        + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0))
    assert gg["deviance"] == pytest.approx(unit.sum(), rel=1e-10)
    assert gg["sigma"] == 1.0


# -- to_dict ------------------------------------------------------------------------------
def test_to_dict_is_json_and_complete(m, gm):
    with pytest.raises(TypeError):
        json.dumps(m.fixef)          # the motivating failure: pandas objects are not JSON
    for fit in (m, gm):
        d = json.loads(json.dumps(fit.to_dict(ranef=True)))
        assert d["model"]["formula"] == fit.design.spec.formula
        assert d["fixef"] == pytest.approx(dict(fit.fixef))
        assert d["se"] == pytest.approx(dict(fit.se))
        assert d["fit"]["logLik"] == pytest.approx(fit.loglik)
        assert d["nobs"] == fit.nobs and d["messages"] == list(fit.messages)
        assert d["varcorr"]["terms"][0]["sd"] == pytest.approx(list(fit.varcorr.terms[0].sd))
        group = next(iter(d["ranef"]))
        assert len(d["ranef"][group]["levels"]) == fit.ngroups[group]
    d = m.to_dict()
    assert d["model"]["fitter"] == "lmer" and d["model"]["REML"] is True
    assert d["varcorr"]["residual_sd"] == pytest.approx(m.sigma)
    assert gm.to_dict()["model"]["family"] == "binomial"
    assert list(m.to_dict(names="r")["fixef"]) == ["(Intercept)", "Days"]


def test_to_dict_nan_becomes_null():
    from mixedmodels.results.tidy import _plain

    assert json.dumps(_plain({"a": np.nan, "b": [np.inf, 1.0], "c": np.int64(3)})) == \
        '{"a": null, "b": [null, 1.0], "c": 3}'


# -- get_matrix ---------------------------------------------------------------------------
def test_get_matrix_reproduces_the_model(m, gm):
    for fit in (m, gm):
        X, Z, L = fit.get_matrix("X"), fit.get_matrix("Z"), fit.get_matrix("Lambda")
        assert sp.issparse(Z) and sp.issparse(L)
        b, u = fit.get_matrix("b"), fit.get_matrix("u")
        eta = X @ fit.get_matrix("beta") + Z @ b + fit.get_matrix("offset")
        np.testing.assert_allclose(eta, fit.get_matrix("eta"), rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(L @ u, b, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose((fit.get_matrix("Zt") - Z.T).toarray(), 0.0)
        np.testing.assert_allclose((fit.get_matrix("Lambdat") - L.T).toarray(), 0.0)
        assert Z.shape == (fit.nobs, fit.get_matrix("q"))
    # covariance of b: sigma^2 Lambda Lambda', the first level's block is VarCorr's
    LL = (m.get_matrix("Lambda") @ m.get_matrix("Lambdat")).toarray() * m.sigma ** 2
    np.testing.assert_allclose(LL[:2, :2], m.varcorr.terms[0].cov, rtol=1e-10)
    # lme4's Z layout: level-major, the term's effects together; dense oracle
    d = m.design
    t = d.terms[0]
    dense = np.zeros((d.nobs, t.q))
    for i in range(d.nobs):
        dense[i, 2 * t.grouping.codes[i]:2 * t.grouping.codes[i] + 2] = t.Z[i]
    np.testing.assert_array_equal(m.get_matrix("Z").toarray(), dense)
    assert m.get_matrix("Gp").tolist() == [0, 36]
    assert m.get_matrix("cnms") == {"Subject": ["Intercept", "Days"]}
    with pytest.raises(ValueError, match="'Lambda'"):
        m.get_matrix("lambda")


# -- ranef index --------------------------------------------------------------------------
def _int_data(offset=100):
    rng = np.random.default_rng(5)
    g = rng.integers(0, 12, 240)
    x = rng.normal(size=240)
    return pd.DataFrame({"y": x + rng.normal(size=12)[g] + rng.normal(size=240), "x": x,
                         "g": g + offset, "h": np.where(g % 2, "a", "b")})


def test_ranef_index_keeps_integer_levels():
    d = _int_data()
    fit = mm.lmer("y ~ x + (1 | g)", d)
    re = fit.ranef()["g"]
    assert re.index.dtype == np.int64
    assert re.loc[100, "Intercept"] == re.iloc[0, 0]           # the failure
    assert list(re.index) == sorted(d.g.unique())
    assert fit.coef()["g"].loc[105, "x"] == pytest.approx(fit.fixef["x"])
    # the values are those of the string-labelled fit
    s = mm.lmer("y ~ x + (1 | g)", d.assign(g=d.g.astype(str)))
    np.testing.assert_allclose(s.ranef()["g"].loc[[str(v) for v in re.index]].to_numpy(),
                               re.to_numpy())
    # prediction by level is unaffected
    np.testing.assert_allclose(fit.predict(d.head(5)), s.predict(d.head(5).assign(
        g=d.g.head(5).astype(str))))


def test_ranef_index_other_dtypes():
    d = _int_data(offset=0)
    f = mm.lmer("y ~ x + (1 | g)", d.assign(g=d.g.astype(float)))
    assert f.ranef()["g"].index.dtype == np.float64 and 3 in f.ranef()["g"].index
    c = mm.lmer("y ~ x + (1 | g)", d.assign(g=pd.Categorical(d.g)))
    assert c.ranef()["g"].index.dtype == np.int64
    inter = mm.lmer("y ~ x + (1 | g:h)", d)
    # interactions keep their labels
    assert not pd.api.types.is_numeric_dtype(inter.ranef()["g:h"].index)
    labels = mm.lmer("y ~ x + (1 | h)", d.assign(h=np.where(d.g % 3, "p", "q")))
    assert list(labels.ranef()["h"].index) == ["p", "q"]


def test_tidy_ran_vals_levels_keep_values():
    fit = mm.lmer("y ~ x + (1 | g)", _int_data())
    t = fit.tidy(effects="ran_vals")
    assert t["level"].iloc[0] == 100 and isinstance(t["level"].iloc[0], int | np.integer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json.dumps(fit.to_dict(ranef=True))
