"""drop1 and the Wald chi-square tables against lme4 / car / glmmTMB, plus independent
checks: drop1's LRT is anova()'s, type II equals the Schur-complement formula, type III the
plain Wald test of the term's coefficients."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.inference.drop1 import droppable_terms
from mixedmodels.inference.terms import fixed_terms
from mixedmodels.inference.wald_anova import wald_anova, wald_table
from terms_fixtures import arr, fit, load, num

#: Deviance differences between our optimum and lme4's/glmmTMB's (objective parity is
#: 1e-3 absolute per fit; a difference of two fits doubles it).
LRT_ATOL = 2e-3
#: The same Wald algebra on R's own estimates: rounding only.
ALGEBRA_RTOL = 1e-9
#: End to end, Wald statistics of LMMs follow the SEs (theta differs at the optimizer's
#: tolerance: about 3e-4 relative on Orthodont).
LMM_WALD_RTOL = 2e-3
#: glmer's vcov is the Hessian of the deviance; lme4's comes from its finite-difference
#: Hessian, whose truncation error reaches 1-2% on these data (see test_glmer_parity.py).
GLMM_WALD_RTOL = 3e-2
#: glmmTMB's vcov is the inverse Hessian too (both exact gradients): close agreement.
TMB_WALD_RTOL = 1e-3

DROP1 = load("drop1")
DROP1_F = load("drop1_f")
WALD = load("anova_wald")
#: lmerTest's columns of its drop1 (F tests).
F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


@pytest.mark.parametrize("name", sorted(set(DROP1) - {"ticks_nb"}))
def test_drop1_matches_r(name):
    ref = DROP1[name]
    m = fit(ref["spec"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = m.drop1(test="Chisq")
    assert list(tab.index) == list(ref["table"])
    assert list(tab.columns) == ["npar", "AIC", "LRT", "Pr(Chi)"]
    for term, row in ref["table"].items():
        npar = num(row.get("npar", row.get("Df")))
        p = num(row.get("Pr(Chi)", row.get("Pr(>Chi)")))
        got = tab.loc[term]
        assert got["AIC"] == pytest.approx(row["AIC"], abs=LRT_ATOL)
        if term == "<none>":
            assert np.isnan(got["npar"]) and np.isnan(got["LRT"]) and np.isnan(got["Pr(Chi)"])
            continue
        assert got["npar"] == npar
        assert got["LRT"] == pytest.approx(row["LRT"], abs=LRT_ATOL)
        # the p-value through the chi-square tail at R's statistic and ours
        assert got["Pr(Chi)"] == pytest.approx(stats.chi2.sf(got["LRT"], npar), rel=1e-12)
        assert stats.chi2.sf(row["LRT"], npar) == pytest.approx(p, rel=1e-8)


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
@pytest.mark.parametrize("name", sorted(DROP1_F))
def test_drop1_f_tests_match_lmertest(name, ddf):
    ref = DROP1_F[name]
    want = ref["tables"][ddf]
    if want == "NA":               # lmerTest: Kenward-Roger for REML fits only
        assert not ref["spec"]["REML"]
        return
    m = fit(ref["spec"])
    tab = m.drop1(test="F", ddf=ddf)
    tab.index = [_r_term(t) for t in tab.index]
    assert list(tab.index) == list(want) and list(tab.columns) == F_COLUMNS
    assert tab.attrs["heading"][0].startswith("Single term deletions using")
    for term, row in want.items():
        assert tab.loc[term, "NumDF"] == row["NumDF"]
        for col in ("Sum Sq", "DenDF", "F value"):
            assert tab.loc[term, col] == pytest.approx(row[col], rel=LMM_WALD_RTOL), col
        assert tab.loc[term, "Pr(>F)"] == pytest.approx(row["Pr(>F)"], rel=LMM_WALD_RTOL,
                                                        abs=1e-12)


def _r_term(label: str) -> str:
    """A term label as R writes it (``I(Days^2)`` for our ``I(Days ** 2)``)."""
    return label.replace(" ", "").replace("**", "^")


def test_drop1_f_of_a_single_coefficient_is_the_squared_t():
    """F = t^2 with the t test's df (coef_table's contrast code, not the anova table's)."""
    spec = dict(DROP1_F["ss_quad_ml"]["spec"])
    for reml, methods in ((False, ("satterthwaite",)),
                          (True, ("satterthwaite", "kenward-roger"))):
        m = fit({**spec, "REML": reml})
        for ddf in methods:
            tab = m.drop1(test="F", ddf=ddf)
            coefs = m.coef_table(ddf)
            coefs.index = [_r_term(c) for c in coefs.index]
            for label in tab.index:
                t = coefs.loc[_r_term(label)]
                assert tab.loc[label, "F value"] == pytest.approx(t["t value"] ** 2,
                                                                  rel=1e-8)
                assert tab.loc[label, "DenDF"] == pytest.approx(t["df"], rel=1e-6)
    with pytest.raises(mm.MixedModelsError, match="REML"):      # as lmerTest
        m = fit(spec)
        m.drop1(test="F", ddf="kenward-roger")
    g = fit(DROP1["cbpp"]["spec"])                    # glmer: Kenward-Roger by default
    assert g.drop1(test="F").loc["period", "F value"] == pytest.approx(
        g.anova_table(ddf="kenward-roger").loc["period", "F value"], rel=1e-12)
    with pytest.raises(ValueError, match="test='F' only"):
        m.drop1(test="Chisq", ddf="satterthwaite")
    with pytest.raises(mm.MixedModelsError, match="glmmtmb"):
        fit(DROP1["sal_zip"]["spec"]).drop1(test="F")


def test_drop1_of_glmer_nb_reestimates_the_shape():
    """lme4's drop1 of a glmer.nb fit refits each reduced model with the full model's shape
    held fixed (its update() of a glmer.nb fit is a glmer with that family); here the
    reduced models estimate it, a proper likelihood-ratio test. With the shape held, the
    refits give lme4's statistics."""
    ref = DROP1["ticks_nb"]
    m = fit(ref["spec"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = m.drop1(test="Chisq")
        for term in ("YEAR", "cHEIGHT"):
            red = m.update(f". ~ . - {term}")
            held = red.recipe.fit_design(red.design, family=m.family, estimate_shape=False)
            lrt_held = 2.0 * (m.loglik - held.loglik)
            assert lrt_held == pytest.approx(ref["table"][term]["LRT"], abs=LRT_ATOL)
            assert tab.loc[term, "LRT"] == pytest.approx(2.0 * (m.loglik - red.loglik),
                                                         abs=1e-10)
            assert tab.loc[term, "LRT"] <= lrt_held + 1e-8   # the shape's maximum helps
            assert tab.loc[term, "npar"] == ref["table"][term]["npar"]


def test_drop1_lrt_is_the_anova_of_the_two_fits():
    ortho = mm.datasets.load("Orthodont")
    m = mm.lmer("distance ~ age + Sex + (1 | Subject)", ortho, REML=False)
    small = mm.lmer("distance ~ age + (1 | Subject)", ortho, REML=False)
    tab = m.drop1(test="Chisq")
    ref = mm.anova(small, m).table
    assert tab.loc["Sex", "LRT"] == pytest.approx(ref["Chisq"].iloc[1], abs=1e-8)
    assert tab.loc["Sex", "AIC"] == pytest.approx(ref["AIC"].iloc[0], abs=1e-8)
    assert tab.loc["<none>", "AIC"] == pytest.approx(m.aic, abs=1e-10)
    assert list(m.drop1().columns) == ["npar", "AIC"]          # test="none"
    bic = m.drop1(k=np.log(m.nobs))
    assert bic.loc["<none>", "AIC"] == pytest.approx(m.bic, abs=1e-10)


def test_drop1_refits_reml_fits_by_ml_and_checks_scope():
    ortho = mm.datasets.load("Orthodont")
    m = mm.lmer("distance ~ age * Sex + (1 | Subject)", ortho)
    with pytest.warns(mm.inference.RefitNote, match="ML"):
        tab = m.drop1(scope="age:Sex", test="Chisq")
    ml = mm.lmer("distance ~ age * Sex + (1 | Subject)", ortho, REML=False)
    assert tab.loc["<none>", "AIC"] == pytest.approx(ml.aic, abs=1e-6)
    with pytest.raises(mm.MixedModelsError, match="age:Sex"):
        ml.drop1(scope="weight")
    # the interaction, with its factors in either order, is the same term
    assert list(ml.drop1(scope=["Sex:age"]).index) == ["<none>", "age:Sex"]
    # R's formula scope: '*' expands, the intercept is no term
    assert list(ml.drop1(scope="~ Sex:age + 1").index) == ["<none>", "age:Sex"]
    assert list(ml.drop1(scope="~ age * Sex").index) == ["<none>", "age", "Sex", "age:Sex"]
    with pytest.raises(mm.MixedModelsError, match="no term"):
        ml.drop1(scope="~ 1")
    with pytest.raises(TypeError, match="scope must be"):
        ml.drop1(scope=5)
    with pytest.raises(ValueError, match="finite number"):
        ml.drop1(k="2")
    bic = ml.drop1(k=np.log(ml.nobs))                       # R's k = log(n): BIC
    assert bic.loc["<none>", "AIC"] == pytest.approx(ml.bic, rel=1e-12)


def test_drop1_respects_marginality():
    ortho = mm.datasets.load("Orthodont")
    m = mm.lmer("distance ~ age * Sex + I(age ** 2) + (1 | Subject)", ortho, REML=False)
    labels = [t.label.replace(" ", "") for t in droppable_terms(fixed_terms(m.design))]
    assert sorted(labels) == ["I(age**2)", "age:Sex"]
    assert sorted(m.drop1().index[1:].str.replace(" ", "")) == sorted(labels)


def test_drop1_refuses_a_change_of_rows():
    sleep = mm.datasets.load("sleepstudy").copy()
    sleep["x"] = np.arange(len(sleep), dtype=float) % 7
    sleep.loc[::10, "x"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Reaction ~ Days + x + (1 | Subject)", sleep, REML=False)
        with pytest.raises(mm.DataError, match="missing values"):
            m.drop1()


def test_drop1_of_glmmtmb_reml_fit_is_by_ml():
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb("count ~ mined + (1 | site)", sal, family="nbinom2", REML=True)
        ml = mm.glmmtmb("count ~ mined + (1 | site)", sal, family="nbinom2")
        tab = m.drop1(test="Chisq")
    assert tab.loc["<none>", "AIC"] == pytest.approx(ml.aic, abs=1e-4)


# -- Wald chi-square tables ------------------------------------------------------------------
def _cases():
    for name, ref in sorted(WALD.items()):
        for key in ("typeII", "typeIII", "zi_typeII", "zi_typeIII"):
            if key in ref:
                yield name, key


def _design(m, component):
    return m.component(component).design if hasattr(m, "component") else m.design


@pytest.mark.parametrize(("name", "key"), list(_cases()))
def test_wald_tables_on_rs_estimates_are_exact(name, key):
    ref = WALD[name]
    m = fit(ref["spec"])
    zi = key.startswith("zi")
    beta = arr(ref["zi_beta" if zi else "beta"])
    V = np.atleast_2d(np.asarray(ref["zi_vcov" if zi else "vcov"], dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = wald_table(_design(m, "zi" if zi else "cond"), beta, V,
                         type=3 if key.endswith("III") else 2)
    assert list(tab.index) == list(ref[key])               # R's labels, R's order
    for term, row in ref[key].items():
        assert tab.loc[term, "Df"] == row["Df"]
        assert tab.loc[term, "Chisq"] == pytest.approx(row["Chisq"], rel=ALGEBRA_RTOL)
        assert tab.loc[term, "Pr(>Chisq)"] == pytest.approx(row["Pr(>Chisq)"], rel=1e-6,
                                                           abs=1e-300)


@pytest.mark.parametrize(("name", "key"), list(_cases()))
def test_wald_tables_end_to_end(name, key):
    ref = WALD[name]
    m = fit(ref["spec"])
    rtol = {"lmer": LMM_WALD_RTOL, "glmer": GLMM_WALD_RTOL}.get(ref["spec"]["fitter"],
                                                               TMB_WALD_RTOL)
    component = "zi" if key.startswith("zi") else "cond"
    type_ = 3 if key.endswith("III") else 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if component == "zi":
            tab = m.anova_table(type=type_, component="zi")
        else:
            tab = m.anova_table(type=type_, test="wald")
    for term, row in ref[key].items():
        assert tab.loc[term, "Chisq"] == pytest.approx(row["Chisq"], rel=rtol)


def _schur_type2(beta, V, a, r):
    """Type II statistic of the coefficients ``a`` given the relatives ``r``: the part of
    beta_a uncorrelated with beta_r, ``b_a - V_ar V_rr^-1 b_r``, and its covariance, the
    Schur complement ``V_aa - V_ar V_rr^-1 V_ra``."""
    C = V[np.ix_(a, r)] @ np.linalg.inv(V[np.ix_(r, r)])
    d = beta[a] - C @ beta[r]
    S = V[np.ix_(a, a)] - C @ V[np.ix_(r, a)]
    return float(d @ np.linalg.solve(S, d))


def test_type2_equals_the_schur_complement_formula():
    ref = WALD["contra_sum"]
    m = fit(ref["spec"])
    beta, V = m.beta, m.vcov.to_numpy()
    tab = m.anova_table(type=2)
    terms = {t.label: t for t in fixed_terms(m.design)}
    for label, t in terms.items():
        rel = [c for u in terms.values() if u is not t and t.variables <= u.variables
               for c in u.columns]
        want = (_schur_type2(beta, V, list(t.columns), rel) if rel else
                float(beta[list(t.columns)] @ np.linalg.solve(
                    V[np.ix_(t.columns, t.columns)], beta[list(t.columns)])))
        assert tab.loc[label, "Chisq"] == pytest.approx(want, rel=1e-9)
    # type III: the plain Wald test of each term's own coefficients
    tab3 = m.anova_table(type=3)
    for label, t in terms.items():
        c = list(t.columns)
        want = float(beta[c] @ np.linalg.solve(V[np.ix_(c, c)], beta[c]))
        assert tab3.loc[label, "Chisq"] == pytest.approx(want, rel=1e-9)


def test_type3_warns_about_treatment_contrasts_in_interactions():
    ref = WALD["cake_full"]
    m = fit(ref["spec"])
    with pytest.warns(mm.ContrastsWarning, match="recipe, temperature"):
        m.anova_table(type=3, test="wald")
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.ContrastsWarning)
        fit(WALD["cake_sum"]["spec"]).anova_table(type=3, test="wald")   # sum contrasts
        m.anova_table(type=2, test="wald")                              # type II
        fit(WALD["cbpp"]["spec"]).anova_table(type=3)                   # no interaction


def test_anova_table_defaults_and_errors():
    lmm = fit(WALD["ortho_int"]["spec"])
    assert list(lmm.anova_table().columns)[-1] == "Pr(>F)"      # lmerTest's F tests
    assert list(lmm.anova_table(test="Chisq").columns) == ["Chisq", "Df", "Pr(>Chisq)"]
    glmm = fit(WALD["cbpp"]["spec"])
    assert list(glmm.anova_table().index) == ["period"]          # type II Wald
    assert list(glmm.anova_table(type=3).index) == ["(Intercept)", "period"]
    with pytest.raises(ValueError, match="test must be"):
        glmm.anova_table(test="lrt")
    with pytest.raises(ValueError, match="type must be"):
        glmm.anova_table(type=1, test="wald")
    with pytest.raises(mm.MixedModelsError, match="component"):
        wald_anova(glmm, component="zi")
    tmb = fit(WALD["sal_zip"]["spec"])
    with pytest.raises(ValueError, match="Wald"):
        tmb.anova_table(test="F")
    with pytest.raises(mm.MixedModelsError, match="glmer fits"):
        tmb.anova_table(ddf="kenward-roger")
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trivial = mm.glmmtmb("count ~ mined + (1 | site)", sal, family="poisson",
                             ziformula="~1")
    with pytest.raises(mm.MixedModelsError, match="nothing to test"):
        trivial.anova_table(component="zi")
    with pytest.raises(mm.MixedModelsError, match="no 'disp' component"):
        trivial.anova_table(component="disp")


def test_wald_table_is_a_dataframe_with_heading():
    tab = fit(WALD["ticks_int"]["spec"]).anova_table()
    assert isinstance(tab, pd.DataFrame)
    assert tab.attrs["heading"][0].startswith("Analysis of Deviance Table (Type II")
    assert tab["Df"].dtype.kind == "i"
