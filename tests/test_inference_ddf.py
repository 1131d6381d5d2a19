"""Satterthwaite, Kenward-Roger and containment df: coefficient tables and F tests against
lmerTest / pbkrtest / nlme (fixtures from tools/r/inference_fixtures.R), and the
Kenward-Roger algebra against a dense n x n oracle written from pbkrtest's formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from kr_oracle import dense_kenward_roger
from mixedmodels.inference.kenward_roger import kenward_roger_state
from reference_models import r_name, reference
from test_inference_cases import arr, at_theta, fit, fixture

#: issue 4: df and p-values within 1e-3 relative, KR standard errors within 1e-4
DF_RTOL = 1e-3
P_RTOL = 1e-3
KR_SE_RTOL = 1e-4
#: at R's own theta the remaining differences are numerical-derivative noise
DF_AT_THETA_RTOL = 1e-4
#: t and F statistics depend on the fit only through beta and vcov
STAT_RTOL = 1e-5
#: dense-oracle agreement (same formulas, different algebra)
ORACLE_RTOL = 1e-8

DDF = fixture("ddf")


def _ref_fit(case):
    return at_theta(fit(case), arr(DDF[case]["theta"]))


@pytest.mark.parametrize("case", sorted(DDF))
def test_satterthwaite_coefficients(case):
    ref = DDF[case]["satterthwaite"]
    m = _ref_fit(case)
    tab = m.coef_table("satterthwaite")
    assert [r_name(n) for n in tab.index] == list(np.atleast_1d(ref["names"]))
    np.testing.assert_allclose(tab["df"], arr(ref["df"]), rtol=DF_AT_THETA_RTOL)
    np.testing.assert_allclose(tab["t value"], arr(ref["t"]), rtol=STAT_RTOL)
    np.testing.assert_allclose(tab["Pr(>|t|)"], arr(ref["p"]), rtol=P_RTOL)
    # and at our own optimum the tolerance holds
    own = fit(case).coef_table("satterthwaite")
    np.testing.assert_allclose(own["df"], arr(ref["df"]), rtol=DF_RTOL)


KR_CASES = sorted(c for c in DDF if "kenward_roger" in DDF[c])


@pytest.mark.parametrize("case", KR_CASES)
def test_kenward_roger_coefficients(case):
    ref = DDF[case]["kenward_roger"]
    m = _ref_fit(case)
    tab = m.coef_table("kenward-roger")
    np.testing.assert_allclose(tab["df"], arr(ref["df"]), rtol=DF_AT_THETA_RTOL)
    np.testing.assert_allclose(tab["Std. Error"], arr(ref["se"]), rtol=KR_SE_RTOL)
    np.testing.assert_allclose(tab["Pr(>|t|)"], arr(ref["p"]), rtol=P_RTOL)


#: as tests/test_lmer_parity.py: where our optimizer finds a lower objective than lme4 by
#: more than this, lme4 stopped short on a flat ridge; values are compared at lme4's theta
#: at the full tolerance and at our optimum at FLAT_RTOL
BETTER_OPTIMUM = 1e-6
FLAT_RTOL = 1e-3


def _check_kr(m, ref, df_rtol, se_rtol):
    tab = m.coef_table("kenward-roger")
    names = [r_name(n) for n in tab.index]
    np.testing.assert_allclose(tab["df"], [ref["kenwardroger"]["df"][n] for n in names],
                               rtol=df_rtol)
    np.testing.assert_allclose(tab["Std. Error"],
                               [ref["kenwardroger"]["se"][n] for n in names], rtol=se_rtol)


@pytest.mark.parametrize("key", ["sleepstudy_reml", "dyestuff", "orthodont"])
def test_kenward_roger_matches_visible_json(key):
    """visible.json's pbkrtest values (df 1e-3, KR standard errors 1e-4 relative)."""
    from reference_models import parse_python_field

    ref = reference()[key]
    formula, _ = parse_python_field(ref["python"])
    m = mm.lmer(formula, mm.datasets.load(ref["data"]))
    if m.objective < ref["objective"] - BETTER_OPTIMUM:
        _check_kr(m, ref, FLAT_RTOL, FLAT_RTOL)
        m = at_theta(m, arr(ref["theta"]))
    _check_kr(m, ref, DF_RTOL, KR_SE_RTOL)


ANOVA_CASES = [(c, k) for c in sorted(DDF) for k in DDF[c]["anova"]]


@pytest.mark.parametrize(("case", "key"), ANOVA_CASES)
def test_anova_tables(case, key):
    ref = DDF[case]["anova"][key]
    method, typ = key.rsplit("_type", 1)
    m = _ref_fit(case)
    tab = m.anova_table(type=int(typ), ddf=method.replace("_", "-"))
    assert list(tab.index) == list(np.atleast_1d(ref["terms"]))
    np.testing.assert_array_equal(tab["NumDF"], arr(ref["num_df"]))
    np.testing.assert_allclose(tab["DenDF"], arr(ref["den_df"]), rtol=DF_AT_THETA_RTOL)
    np.testing.assert_allclose(tab["F value"], arr(ref["F"]), rtol=STAT_RTOL)
    np.testing.assert_allclose(tab["Sum Sq"], arr(ref["sum_sq"]), rtol=STAT_RTOL)
    np.testing.assert_allclose(tab["Pr(>F)"], arr(ref["p"]), rtol=P_RTOL)


CONT = fixture("containment")


@pytest.mark.parametrize("case", sorted(CONT))
def test_containment_df_match_nlme(case):
    ref = CONT[case]
    m = fit(case)
    tab = m.coef_table("containment")
    np.testing.assert_array_equal(tab["df"], arr(ref["df"]))
    terms = m._containment.terms
    for name, df in zip(np.atleast_1d(ref["terms"]), arr(ref["term_den_df"]), strict=True):
        if name != "(Intercept)":
            assert terms[name] == df
    if terms:
        anova = m.anova_table(ddf="containment")
        for name, df in terms.items():
            assert anova.loc[name, "DenDF"] == df


def test_containment_refuses_crossed_factors():
    with pytest.raises(mm.MixedModelsError, match="nested"):
        fit("pen").coef_table("containment")


def test_kenward_roger_needs_reml():
    with pytest.raises(mm.MixedModelsError, match="REML"):
        fit("ss_ml").coef_table("kenward-roger")


def test_ddf_none_is_lme4s_table():
    tab = fit("ss_reml").coef_table(None)
    assert list(tab.columns) == ["Estimate", "Std. Error", "t value"]
    with pytest.raises(ValueError, match="ddf must be"):
        fit("ss_reml").coef_table("bogus")


# -- Kenward-Roger against a dense oracle -------------------------------------------------
def _dense_kr(m):
    """pbkrtest's vcovAdj with n x n matrices (independent of the q-space algebra)."""
    d = m.design
    n = d.nobs
    blocks, Zs = [], []
    for t, sl in zip(d.terms, d.theta_slices(), strict=True):
        Z = np.zeros((n, t.q))
        for j in range(t.p):
            Z[np.arange(n), t.grouping.codes * t.p + j] = t.Z[:, j]
        lam = t.structure.lambda_(m.theta[sl])
        blocks.append(m.sigma ** 2 * lam @ lam.T)
        Zs.append((Z, t.nlevels, t.p))
    G, Sigma = [], np.eye(n) * m.sigma ** 2
    for (Z, lv, p), cov in zip(Zs, blocks, strict=True):
        Sigma += Z @ np.kron(np.eye(lv), cov) @ Z.T
        for b in range(p):
            for a in range(b + 1):
                E = np.zeros((p, p))
                E[a, b] = E[b, a] = 1.0
                G.append(Z @ np.kron(np.eye(lv), E) @ Z.T)
    G.append(np.eye(n))
    Phi, PhiA, _, _ = dense_kenward_roger(Sigma, d.X, G)
    return Phi, PhiA


@pytest.mark.parametrize("case", ["ss_unbal", "ortho_unbal", "pastes"])
def test_kenward_roger_matches_dense_oracle(case):
    m = fit(case)
    Phi, PhiA = _dense_kr(m)
    st = kenward_roger_state(m)
    np.testing.assert_allclose(st.Phi, Phi, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(st.Phi, m.vcov.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(st.PhiA, PhiA, rtol=ORACLE_RTOL, atol=1e-12)


def test_kenward_roger_uses_prior_weights():
    """With weights the residual covariance is sigma^2 W^{-1}; the adjusted covariance must
    equal the oracle on the row-scaled problem (weights folded into X, Z and y)."""
    df = fixture_data_weighted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        mw = mm.lmer("Reaction ~ Days + (1 | Subject)", df, weights="w")
    st = kenward_roger_state(mw)
    np.testing.assert_allclose(st.Phi, mw.vcov.to_numpy(), rtol=1e-7)
    assert np.all(np.linalg.eigvalsh(st.PhiA - st.Phi) > -1e-10)


def fixture_data_weighted():
    df = mm.datasets.load("sleepstudy")
    return df.assign(w=1.0 + (np.arange(len(df)) % 4) / 2.0)
