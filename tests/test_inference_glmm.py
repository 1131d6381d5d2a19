"""Inference for GLMMs and GLMs: glm against R's glm, likelihood-ratio tests with glmer and
glm fits, profile intervals against lme4, simulation against the model's marginal means,
refits, and a parametric-bootstrap comparison."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special, stats

import mixedmodels as mm
from reference_models import r_name
from test_inference_cases import arr, fixture

pytestmark = pytest.mark.skipif(not hasattr(mm, "glmer"), reason="needs glmer")

REF = fixture("glmm")
#: glm is a deterministic IRLS: estimates to rounding, standard errors to the last IRLS step
GLM_COEF_ATOL = 1e-8
GLM_SE_RTOL = 1e-5
GLM_LL_RTOL = 1e-10
#: lme4's Laplace optimizer stops 5.7e-4 above our optimum for cbpp, so GLMM likelihoods
#: and LRT statistics agree to about that
GLMM_LL_ATOL = 2e-3
PROFILE_RTOL = 1e-3
ZETA_ATOL = 5e-3
MC_SE = 4.0

CBPP = "cbind(incidence, size - incidence) ~ period"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def gm1(cbpp):
    return mm.glmer(CBPP + " + (1 | herd)", cbpp, family="binomial")


@pytest.fixture(scope="module")
def g0(cbpp):
    return mm.glm(CBPP, cbpp, family="binomial")


@pytest.mark.parametrize(("key", "data", "formula", "family"), [
    ("glm_binomial", "cbpp", CBPP, "binomial"),
    ("glm_poisson", "grouseticks", "TICKS ~ YEAR + cHEIGHT", "poisson"),
])
def test_glm_matches_r(key, data, formula, family):
    ref = REF[key]
    g = mm.glm(formula, mm.datasets.load(data), family=family)
    np.testing.assert_allclose(g.beta, arr(ref["coef"]), atol=GLM_COEF_ATOL)
    np.testing.assert_allclose(g.se, arr(ref["se"]), rtol=GLM_SE_RTOL)
    assert g.loglik == pytest.approx(ref["logLik"], rel=GLM_LL_RTOL)
    assert g.df == ref["df"]
    assert g.deviance_residual_sum == pytest.approx(ref["deviance"], rel=1e-10)
    assert g.converged


def test_glm_refuses_random_effects(cbpp):
    with pytest.raises(mm.FormulaError, match="glmer"):
        mm.glm(CBPP + " + (1 | herd)", cbpp)


def _check_lrt(res, ref):
    np.testing.assert_array_equal(res.table["npar"], arr(ref["npar"]))
    np.testing.assert_allclose(res.table["logLik"], arr(ref["logLik"]), atol=GLMM_LL_ATOL)
    np.testing.assert_allclose(res.table["Chisq"].iloc[1], arr(ref["Chisq"])[1],
                               atol=GLMM_LL_ATOL)
    assert res.table["Pr(>Chisq)"].iloc[1] == pytest.approx(arr(ref["p"])[1], rel=1e-2)


def test_anova_of_glmms_and_glm(cbpp, gm1, g0):
    gm0 = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp,
                   family="binomial")
    _check_lrt(mm.anova(gm1, gm0), REF["anova_gm1_gm0"])
    _check_lrt(mm.anova(gm1, g0), REF["anova_gm1_glm"])
    pois = mm.glm("incidence ~ period", cbpp, family="poisson")
    with pytest.raises(mm.NotNestedError, match=r"famil|different responses"):
        mm.anova(gm1, pois)


def test_glmm_profile_intervals_match_lme4(gm1):
    ref = REF["profile"]
    pr = gm1.profile()
    ci = pr.confint()
    assert [n if n.startswith("sd_") else r_name(n) for n in ci.index] == ref["names"]
    np.testing.assert_allclose(ci["lower"], arr(ref["lower"]), rtol=PROFILE_RTOL)
    np.testing.assert_allclose(ci["upper"], arr(ref["upper"]), rtol=PROFILE_RTOL)
    curve = ref["curves"]["sd_(Intercept)|herd"]
    values, zeta = arr(curve["value"]), arr(curve["zeta"])
    keep = np.abs(zeta) < 2.5
    ours = pr.curves["sd_(Intercept)|herd"]
    np.testing.assert_allclose([ours.zeta_fun(v) for v in values[keep]], zeta[keep],
                               atol=ZETA_ATOL)


def test_glmm_wald_and_z_table(gm1):
    ci = gm1.confint(method="wald", level=0.9)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(ci["lower"], gm1.fixef - z * gm1.se, rtol=1e-12)
    tab = gm1.coef_table()
    assert list(tab.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    with pytest.raises(mm.MixedModelsError, match="linear mixed models"):
        gm1.coef_table("satterthwaite")


def test_glmm_simulation_matches_marginal_means(gm1):
    """Mean simulated proportion = E_b[logit^-1(x'beta + b)], b ~ N(0, theta^2), computed
    here by Gauss-Hermite quadrature."""
    nsim = 1500
    sims = gm1.simulate(nsim, seed=3).to_numpy()
    trials = gm1.design.extra["trials"]
    k = sims * trials[:, None]
    np.testing.assert_allclose(k, np.rint(k), atol=1e-9)          # whole numbers of cases
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    eta = gm1.design.X @ gm1.beta
    sd = gm1.theta[0]
    p = special.expit(eta[:, None] + sd * nodes[None, :]) @ (weights / weights.sum())
    var = p * (1 - p) / trials + np.var(special.expit(eta[:, None] + sd * nodes), axis=1)
    assert np.all(np.abs(sims.mean(axis=1) - p) < MC_SE * np.sqrt(var / nsim) + 1e-3)


def test_glmm_refit_equals_a_fresh_fit(cbpp, gm1):
    y = gm1.simulate(1, seed=8)["sim_1"].to_numpy()
    r = gm1.refit(y)
    data = cbpp.assign(incidence=np.rint(y * cbpp["size"]).astype(int))
    fresh = mm.glmer(CBPP + " + (1 | herd)", data, family="binomial")
    assert r.objective == pytest.approx(fresh.objective, abs=1e-4)
    np.testing.assert_allclose(r.beta, fresh.beta, rtol=1e-3, atol=1e-4)


def test_pb_test_of_glmm_against_glm(gm1, g0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        a = mm.pb_test(gm1, g0, nsim=30, seed=4)
        b = mm.pb_test(gm1, g0, nsim=30, seed=4, n_jobs=2)
    np.testing.assert_array_equal(a.reference, b.reference)
    assert a.lrt == pytest.approx(mm.anova(gm1, g0).table["Chisq"].iloc[1], rel=1e-12)
    assert a.p_value < 0.2
    # the GLM null model's simulations are binomial proportions of the same trials
    sims = g0.simulate(2, seed=1).to_numpy() * gm1.design.extra["trials"][:, None]
    np.testing.assert_allclose(sims, np.rint(sims), atol=1e-9)


def test_glmm_varcorr_se_is_consistent_with_the_fit(gm1):
    """The delta-method Hessian covers theta and beta; its fixed-effect block must give the
    fit's own Hessian-based standard errors (an independent finite-difference scheme)."""
    from mixedmodels.inference.profile_glmm import _GLMMProfiler
    from mixedmodels.inference.varcorr_se import _delta_se

    pr = _GLMMProfiler(gm1)
    full = _delta_se(pr.dev, pr.opt, pr.lower, pr.upper,
                     list(pr.map.names) + list(gm1.fixef.index))
    np.testing.assert_allclose(full["se"].iloc[1:], gm1.se, rtol=1e-3)
    with pytest.warns(mm.inference.VarCorrSEWarning):
        tab = gm1.varcorr_se()
    assert list(tab.index) == ["sd_(Intercept)|herd"]
    assert tab["se"].iloc[0] == pytest.approx(full["se"].iloc[0], rel=1e-12)
