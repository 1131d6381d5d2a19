"""r2 / icc against performance::r2_nakagawa and icc; re_pca against lme4's rePCA; allfit;
the rescaling advice against lme4's checkScaleX."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.diagnostics import re_pca, scale_advice
from mixedmodels.diagnostics.allfit import theta_names
from mixedmodels.inference.r2 import R2Warning, intercept_variances
from terms_fixtures import arr, fit, load, num

#: Variance components from fits that agree with R's to the optimizer's tolerance
#: (Orthodont's random variance differs by 2e-4; Poisson GLMMs' fixed variance by 1e-3).
VAR_RTOL = 3e-3
#: R², ICC (bounded, small): absolute.
R2_ATOL = 2e-3
#: rePCA from our theta (lme4's differs at the optimizer's tolerance; Orthodont 1e-3).
PCA_RTOL = 3e-3

R2 = load("r2_icc")
PCA = load("re_pca")
SCALE = load("scale_x")
#: Models whose R² differs from performance's for a stated reason (tested separately).
DIFFERENT = {"ss_uncorr": "insight drops the second term of a grouping factor",
             "ticks_sqrt": "glmer's sqrt-link fit stops at the link's edge (not lme4's)"}


def _decompose(m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.r2(), m.icc()


@pytest.mark.parametrize("name", sorted(set(R2) - set(DIFFERENT)))
def test_r2_and_icc_match_performance(name):
    ref = R2[name]
    r2, icc = _decompose(fit(ref["spec"]))
    v = r2.variances
    for ours, key in ((v.fixed, "var_fixed"), (v.random, "var_random"),
                      (v.residual, "var_residual"), (v.distribution, "var_distribution"),
                      (v.dispersion, "var_dispersion")):
        want = num(ref[key])
        if np.isnan(want):
            assert np.isnan(ours), key
        else:
            assert ours == pytest.approx(want, rel=VAR_RTOL, abs=1e-12), key
    for ours, key in ((r2.conditional, "r2_conditional"), (r2.marginal, "r2_marginal"),
                      (icc.adjusted, "icc_adjusted"), (icc.unadjusted, "icc_unadjusted")):
        want = num(ref[key])
        if np.isnan(want):
            assert np.isnan(ours), key
        else:
            assert ours == pytest.approx(want, abs=R2_ATOL), key


#: Models whose ICC by group is performance's (random intercepts only, or slopes whose
#: variance insight also counts: its by-group values then carry its warning, not ours).
BY_GROUP = sorted(k for k, ref in R2.items()
                  if isinstance(ref.get("icc_by_group"), dict) and k not in DIFFERENT)


@pytest.mark.parametrize("name", BY_GROUP)
def test_icc_by_group_matches_performance(name):
    ref = R2[name]
    m = fit(ref["spec"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = m.icc(by_group=True)
    assert list(tab.columns) == ["ICC"] and tab.index.name == "group"
    want = {g: num(v) for g, v in ref["icc_by_group"].items()}
    assert sorted(tab.index) == sorted(want)
    # an intercept variance is an extrapolation to x = 0 (Orthodont: age 0), as sensitive to
    # the optimizer's tolerance as the variances: their relative tolerance applies
    for g, v in want.items():
        assert tab.loc[g, "ICC"] == pytest.approx(v, rel=VAR_RTOL, abs=R2_ATOL), g
    for g, v in intercept_variances(m).items():
        assert v == pytest.approx(num(ref["var_intercept"][g]), rel=VAR_RTOL), g


def test_icc_by_group_sums_to_the_adjusted_icc_without_slopes():
    """With random intercepts only, the factors' ICCs add up to the adjusted ICC (their
    variances are the random variance); a slope model warns, as performance."""
    m = fit(R2["pastes"]["spec"])
    tab = m.icc(by_group=True)
    assert tab["ICC"].sum() == pytest.approx(m.icc().adjusted, rel=1e-12)
    with pytest.warns(R2Warning, match="random slopes"):
        fit(R2["ss_slope"]["spec"]).icc(by_group=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nointercept = mm.lmer("Reaction ~ Days + (0 + Days | Subject)",
                              mm.datasets.load("sleepstudy"))
    with pytest.raises(mm.MixedModelsError, match="random intercepts"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nointercept.icc(by_group=True)


def test_every_term_counts_unlike_insight():
    """For (Days || Subject) insight keeps only the first term of the factor Subject; the
    slope's term adds sd_Days^2 mean(Days^2) (Days is its own fixed column)."""
    ref = R2["ss_uncorr"]
    m = fit(ref["spec"])
    r2, _ = _decompose(m)
    vc = {t.group: t for t in m.varcorr.terms}
    days = m.design.X[:, list(m.design.fixed.names).index("Days")]
    slope = float(vc["Subject.1"].cov[0, 0]) * float(np.mean(days ** 2))
    assert r2.variances.random == pytest.approx(ref["var_random"] + slope, rel=VAR_RTOL)
    assert r2.variances.fixed == pytest.approx(ref["var_fixed"], rel=VAR_RTOL)


def test_sqrt_link_variance_is_a_quarter():
    r2, _ = _decompose(fit(R2["ticks_sqrt"]["spec"]))
    assert r2.variances.distribution == 0.25 == R2["ticks_sqrt"]["var_distribution"]


def test_singular_fit_leaves_random_variance_undefined():
    m = fit(R2["dyes2_singular"]["spec"])
    with pytest.warns(R2Warning, match="singular"):
        r2 = m.r2()
    with pytest.warns(R2Warning, match="singular"):
        icc = m.icc()
    assert np.isnan(r2.conditional) and np.isnan(icc.adjusted)
    v = r2.variances
    assert r2.marginal == pytest.approx(v.fixed / (v.fixed + v.residual), abs=1e-15)


def test_r2_decomposition_identities():
    m = fit(R2["ortho"]["spec"])
    r2, icc = _decompose(m)
    v = r2.variances
    total = v.fixed + v.random + v.residual
    assert r2.marginal == pytest.approx(v.fixed / total, rel=1e-14)
    assert icc.unadjusted == pytest.approx(v.random / total, rel=1e-14)
    assert icc.adjusted == pytest.approx(v.random / (v.random + v.residual), rel=1e-14)
    # the random variance: mean of z' Sigma z over rows, here z = (1, age)
    age = m.design.X[:, list(m.design.fixed.names).index("age")]
    S = m.varcorr.terms[0].cov
    want = np.mean(S[0, 0] + 2 * S[0, 1] * age + S[1, 1] * age ** 2)
    assert v.random == pytest.approx(want, rel=1e-12)
    assert v.residual == pytest.approx(m.sigma ** 2, rel=1e-12)
    assert "R2 for Mixed Models" in str(r2) and "Adjusted ICC" in str(icc)


def test_r2_warnings_and_errors():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ 1 + (Days | Subject)", sleep)
    with pytest.warns(R2Warning, match="random slopes not present"):
        m.r2()
    sal = mm.datasets.load("Salamanders")
    # (genpois and beta are covered since lane diagsweep: tests/test_sweep_diagsweep.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cc = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                      mm.datasets.load("cbpp"), family="binomial", link="cauchit")
    with pytest.raises(mm.MixedModelsError, match="cauchit"):
        cc.r2()
    with pytest.raises(mm.MixedModelsError, match="random effects"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.glmmtmb("count ~ mined", sal, family="poisson").r2()


# -- rePCA -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PCA))
def test_re_pca_matches_lme4(name):
    ref = PCA[name]
    m = fit(ref["spec"])
    ours = m.re_pca()
    at_r = re_pca(m.design, arr(ref["theta"]))
    assert list(ours.components) == list(ref["groups"])
    for group, want in ref["groups"].items():
        for got, rtol in ((ours[group], PCA_RTOL), (at_r[group], 1e-10)):
            np.testing.assert_allclose(got["sd"], arr(want["sdev"]), rtol=rtol, atol=1e-12)
            np.testing.assert_allclose(got["proportion"], arr(want["proportion"]),
                                       rtol=rtol, atol=1e-5)     # R rounds to 5 digits
            np.testing.assert_allclose(got["cumulative"], arr(want["cumulative"]),
                                       rtol=rtol, atol=1e-5)


def test_re_pca_rotation_reconstructs_the_covariance():
    m = fit(PCA["ss_slope"]["spec"])
    pca = m.re_pca()
    U = pca.rotation["Subject"].to_numpy()
    d = pca["Subject"]["sd"].to_numpy()
    lam = m.design.terms[0].structure.lambda_(m.theta)
    np.testing.assert_allclose(U @ np.diag(d ** 2) @ U.T, lam @ lam.T, atol=1e-12)
    assert "Grouping factor Subject" in str(pca)


def test_re_pca_of_a_singular_fit_and_of_glmmtmb():
    dyes2 = mm.datasets.load("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", dyes2)
        z = mm.glmmtmb("count ~ mined + (1 | site)", mm.datasets.load("Salamanders"),
                       family="poisson", ziformula="~ mined + (1 | site)")
    assert m.re_pca()["Batch"]["sd"].iloc[0] < 1e-4
    for comp in ("cond", "zi"):
        pca = z.re_pca(component=comp)
        sd = z.varcorr_of(comp).terms[0].sd[0]
        assert pca["site"]["sd"].iloc[0] == pytest.approx(sd, rel=1e-10)  # absolute Lambda
    with pytest.raises(mm.MixedModelsError, match="only the conditional"):
        m.re_pca(component="zi")


# -- allfit ----------------------------------------------------------------------------------
def test_allfit_lmer():
    m = fit(PCA["ss_slope"]["spec"])
    res = mm.allfit(m)
    assert list(res.table.index) == ["gradient", "bobyqa", "nelder_mead", "cobyqa", "lbfgsb"]
    assert res.ok == list(res.table.index)       # the gradient handles (Days | Subject) too
    assert res.table.loc[res.ok, "converged"].all()
    assert res.spread["objective"] < 1e-6
    assert res.spread.filter(like="theta[").max() < 1e-4
    assert res.table.loc[res.best(), "objective"] == res.table["objective"].min()
    names = [f"theta[{n}]" for n in theta_names(m.design)]
    assert names == ["theta[Subject.Intercept]", "theta[Subject.Days.Intercept]",
                     "theta[Subject.Days]"]
    np.testing.assert_allclose(res.table.loc["bobyqa", names].to_numpy(dtype=float),
                               m.update(optimizer="bobyqa").theta, rtol=1e-12)
    assert "bobyqa" in str(res)
    np.testing.assert_allclose(res.table.loc[res.ok, "sigma"].to_numpy(dtype=float),
                               [res.fits[k].sigma for k in res.ok], rtol=1e-12)
    assert res.spread["sigma"] < 1e-4


def test_allfit_keeps_an_optimizer_that_fails_as_a_row(monkeypatch):
    # a covariance structure without d Lambda / d theta: optimizer='gradient' refuses
    import mixedmodels.objective.lmm as lmm_objective

    monkeypatch.setattr(lmm_objective, "has_jacobian", lambda structures: False)
    res = mm.allfit(fit(PCA["ss_slope"]["spec"]), optimizers=["gradient", "bobyqa"])
    assert not res.table.loc["gradient", "converged"]
    assert "lambda_jacobian" in res.table.loc["gradient", "warnings"]   # the error, kept
    assert res.fits["gradient"] is None and res.ok == ["bobyqa"]
    assert "gradient: ValueError" in str(res)


def test_allfit_reports_the_negative_binomial_shape():
    ticks = mm.datasets.load("grouseticks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = mm.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", ticks)
        res = mm.allfit(nb, optimizers=["bobyqa", "nelder_mead"])
    assert "sigma" not in res.table.columns             # no dispersion besides the shape
    np.testing.assert_allclose(res.table["nb_theta"].to_numpy(dtype=float),
                               [res.fits[k].family.theta for k in res.ok], rtol=1e-12)
    assert res.table.loc["bobyqa", "nb_theta"] == pytest.approx(nb.family.theta, rel=1e-3)
    assert res.spread["nb_theta"] < 1e-2 * nb.family.theta


def test_allfit_glmer_and_errors():
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    res = mm.allfit(g, optimizers=["bobyqa", "nelder_mead"])
    assert list(res.table.index) == ["bobyqa", "nelder_mead"]
    assert list(mm.allfit(g, optimizers="cobyqa").table.index) == ["cobyqa"]  # one name
    assert res.spread["objective"] < 1e-4
    assert "sigma" not in res.table.columns             # binomial: no scale estimated
    with pytest.raises(ValueError, match="unknown optimizer"):
        mm.allfit(g, optimizers=["newton"])
    with pytest.raises(TypeError, match="needs a fitted model"):
        mm.allfit("Reaction ~ Days + (1 | Subject)")
    assert g.recipe.optimizers[0] == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = mm.glmmtmb("count ~ mined + (1 | site)", mm.datasets.load("Salamanders"),
                       family="poisson")
    assert z.recipe.optimizers == ()
    with pytest.raises(mm.MixedModelsError, match="no optimizer"):
        mm.allfit(z)
    d = mm.materialize(mm.parse_formula("Reaction ~ Days + (1 | Subject)"),
                       mm.datasets.load("sleepstudy"))
    with pytest.raises(mm.MixedModelsError, match="Design"):
        mm.allfit(mm.fit_lmm(d))


# -- rescaling advice ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCALE))
def test_scaling_warning_as_lme4(name):
    ref = SCALE[name]
    data = mm.datasets.load(ref["spec"]["data"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.lmer(ref["spec"]["formula"].replace("^", "**"), data)
    warned = [w for w in caught if issubclass(w.category, mm.ScalingWarning)]
    assert bool(warned) == ref["warned"]
    if warned:
        assert "consider rescaling" in str(warned[0].message)
        assert any("consider rescaling" in msg for msg in m.messages)


def test_scale_advice_rules():
    rng = np.random.default_rng(1)
    n = 50
    ones = np.ones(n)
    x = rng.normal(size=n)
    ind = (rng.random(n) > 0.5).astype(float)
    assert scale_advice(np.column_stack([ones, ind, 5000 * ind]), ["a", "b", "c"]) \
        is not None                                  # 5000 * indicator is not 0/1
    assert scale_advice(np.column_stack([ones, ind, x]), ["a", "b", "c"]) is None
    msg = scale_advice(np.column_stack([ones, x, 2000 * x]), ["Intercept", "x", "x2000"])
    assert "x2000 (sd" in msg and "Intercept" not in msg
    assert scale_advice(np.column_stack([ones, 1e-4 * x]), ["a", "b"]) is not None
    assert scale_advice(np.column_stack([ones, x, 999 * x]), ["a", "b", "c"]) is None
    with pytest.warns(mm.ScalingWarning):
        mm.glmer("cbind(incidence, size - incidence) ~ I(1e4 * (size - 15)) + (1 | herd)",
                 mm.datasets.load("cbpp"), family="binomial")


def _flags_by_numpy(X: np.ndarray, tol: float = 1e3) -> bool:
    """lme4's checkScaleX rule stated with numpy's reductions (an independent statement of
    what scale_advice decides): NaN standard deviations never flag, a zero one always."""
    cont = ~np.all((X == 0.0) | (X == 1.0), axis=0)
    if not cont.any():
        return False
    with np.errstate(all="ignore"):
        logsd = np.log(np.std(X[:, cont], axis=0, ddof=1))
        spread = logsd.max() - logsd.min()
        return bool(spread > np.log(tol) or np.abs(logsd).max() > np.log(tol))


def test_scale_advice_matches_the_rule_on_random_matrices():
    # the decision is taken on Python floats (a small fit's overhead); it must be numpy's
    # on every kind of column: wide scales, constants (sd 0), NaN, inf, overflow
    rng = np.random.default_rng(7)
    for trial in range(400):
        p = int(rng.integers(1, 5))
        X = rng.normal(size=(20, p)) * 10.0 ** rng.integers(-5, 6, size=p)
        kind = trial % 6
        if kind == 1:
            X[:, -1] = 3.0
        elif kind == 2:
            X[0, 0] = np.nan
        elif kind == 3:
            X[0, -1] = np.inf
        elif kind == 4:
            X[:, 0] = 1e200 * rng.normal(size=20)
        with np.errstate(all="ignore"):
            advice = scale_advice(X, [f"x{j}" for j in range(p)])
        assert (advice is not None) == _flags_by_numpy(X), (trial, X)
