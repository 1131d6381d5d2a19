"""exact_lrt against RLRsim's exactLRT (statistic, simulated null distribution) and, slow,
against brute-force refits under the null; Kenward-Roger for GLMMs against pbkrtest at ML
estimates (Gaussian identity link) and against a dense n x n implementation of the
formulas (binomial, Poisson)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from kr_oracle import dense_kenward_roger, dense_z
from mixedmodels.inference.kenward_roger import _pairs, kr_state
from mixedmodels.inference.kenward_roger_glmm import glmm_kenward_roger_state, working_weights
from terms_fixtures import arr, load

#: ML log-likelihoods of our fits against lme4's (1e-3 objective parity, halved).
STAT_ATOL = 1e-3
#: Monte-Carlo comparisons, in standard errors of the difference.
MC_SE = 4.5
#: Our draws in the distribution checks (R's fixture has 10^5).
NSIM = 20000
#: Kenward-Roger quantities at the same parameters: rounding only.
KR_RTOL = 1e-7
#: Against pbkrtest at lme4's ML optimum, which is ours to the optimizer's tolerance.
KR_FIT_RTOL = 2e-4

LRT = load("exact_lrt")
KR = load("kr_lmm_ml")


def _lrt_fits(spec):
    data = mm.datasets.load(spec["data"])
    return (mm.lmer(spec["formula"], data, REML=False), mm.lm(spec["null"], data))


@pytest.mark.parametrize("name", sorted(LRT))
def test_exact_lrt_matches_rlrsim(name):
    ref = LRT[name]
    m, m0 = _lrt_fits(ref["spec"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.inference.RefitNote)
        res = mm.exact_lrt(m, m0, nsim=NSIM, seed=2)
    assert res.statistic == pytest.approx(ref["statistic"], abs=STAT_ATOL)
    assert res.restrictions == m.design.p - m0.design.p
    # the simulated null distribution: our empirical cdf at R's quantiles
    n_r = ref["nsim"]
    for prob, q in zip(ref["probs"], ref["quantiles"], strict=True):
        if q == 0:
            continue
        got = float(np.mean(res.null_sample <= q))
        se = np.sqrt(prob * (1 - prob) * (1 / n_r + 1 / NSIM))
        assert abs(got - prob) < MC_SE * se, (prob, got)
    mass = ref["mass_at_zero"]
    se = np.sqrt(max(mass * (1 - mass), 1e-4) * (1 / n_r + 1 / NSIM))
    assert abs(np.mean(res.null_sample == 0) - mass) < MC_SE * se
    p = ref["p_value"]
    se = np.sqrt(max(p * (1 - p), 1 / NSIM) * (1 / n_r + 1 / NSIM))
    assert abs(res.p_value - p) < MC_SE * se


def test_exact_lrt_notes_and_errors():
    sleep = mm.datasets.load("sleepstudy")
    m0 = mm.lm("Reaction ~ Days", sleep)
    reml = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    ml = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.warns(mm.inference.RefitNote) as record:
        res = mm.exact_lrt(reml, m0, nsim=200, seed=1)
    messages = " ".join(str(w.message) for w in record)
    assert "rlrt" in messages and "ML" in messages          # q = 0, and the ML refit
    assert res.statistic == pytest.approx(2 * (ml.loglik - m0.loglik), abs=1e-6)
    assert "distribution of LRT" in str(res) and "< 0.005" in str(res)
    two = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep,
                  REML=False)
    with pytest.raises(mm.MixedModelsError, match="single scalar"):
        mm.exact_lrt(two, m0)
    with pytest.raises(mm.MixedModelsError, match=r"mm\.lm"):
        mm.exact_lrt(two, ml)
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    with pytest.raises(mm.MixedModelsError, match="pb_test"):
        mm.exact_lrt(g, m0)
    with pytest.raises(mm.inference.NotNestedError):
        mm.exact_lrt(ml, mm.lm("Reaction ~ Days + I(Days ** 2)", sleep))


def test_exact_lrt_of_a_zero_variance_is_one():
    dyes2 = mm.datasets.load("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", dyes2, REML=False)
        res = mm.exact_lrt(m, mm.lm("Yield ~ 1", dyes2), nsim=500, seed=1)
    assert res.statistic == 0.0 and res.p_value == 1.0


def test_rlrt_on_ml_fits_points_to_exact_lrt():
    sleep = mm.datasets.load("sleepstudy")
    m1 = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.warns(mm.inference.RefitNote, match="exact_lrt"):
        mm.rlrt(m1, mm.lm("Reaction ~ Days", sleep), nsim=50, seed=1)
    with pytest.raises(mm.MixedModelsError, match="exact_lrt"):
        mm.rlrt(m1, mm.lm("Reaction ~ 1", sleep), nsim=50)


def test_rlrt_of_a_single_term_defaults_to_the_linear_model():
    """RLRsim's exactRLRT(m): without m_reduced the null is the linear model with m's fixed
    effects (and prior weights)."""
    sleep = mm.datasets.load("sleepstudy").assign(w=lambda d: 1 + d["Days"] / 10)
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights="w")
    alone = mm.rlrt(m, nsim=500, seed=3)
    given = mm.rlrt(m, mm.lm("Reaction ~ Days", sleep, weights="w"), nsim=500, seed=3)
    assert alone.statistic == pytest.approx(given.statistic, rel=1e-12)
    assert alone.p_value == given.p_value and alone.term == given.term
    np.testing.assert_array_equal(alone.null_sample, given.null_sample)
    two = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep)
    with pytest.raises(mm.MixedModelsError, match="only random-effects term"):
        mm.rlrt(two)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="nsim must be"):
            mm.rlrt(m, nsim=bad)
    with pytest.raises(ValueError, match="nsim must be"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.exact_lrt(m, mm.lm("Reaction ~ 1", sleep, weights="w"), nsim=0)


@pytest.mark.slow
def test_exact_lrt_null_distribution_by_brute_force():
    """The simulated distribution against LRTs of ML refits to responses drawn under the
    null (a linear model), on Dyestuff's design."""
    dyes = mm.datasets.load("Dyestuff").copy()
    m0 = mm.lm("Yield ~ 1", dyes)
    m = mm.lmer("Yield ~ 1 + (1 | Batch)", dyes, REML=False)
    rng = np.random.default_rng(5)
    stats = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(400):
            y = 1500 + 50 * rng.standard_normal(len(dyes))
            stats.append(max(0.0, 2 * (m.refit(y).loglik - m0.refit(y).loglik)))
        sample = mm.exact_lrt(m, m0, nsim=NSIM, seed=3).null_sample
    stats = np.asarray(stats)
    for q in (0.0, 0.5, 1.5, 3.0):
        # a refit at theta = 0 leaves an LRT of rounding size, not exactly 0
        a, b = np.mean(stats <= q + 1e-6), np.mean(sample <= q)
        se = np.sqrt(b * (1 - b) * (1 / stats.size + 1 / NSIM))
        assert abs(a - b) < MC_SE * max(se, 1e-3), (q, a, b)


# -- Kenward-Roger on the working model ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(KR))
def test_glmm_kr_reduces_to_pbkrtest_for_gaussian_identity(name):
    ref = KR[name]
    data = mm.datasets.load(ref["spec"]["data"])
    g = mm.glmer(ref["spec"]["formula"], data, family="gaussian")
    st = glmm_kenward_roger_state(g)
    PhiA = np.asarray(ref["PhiA"], dtype=float)
    np.testing.assert_allclose(st.PhiA, PhiA, rtol=KR_FIT_RTOL)
    # at lme4's own estimates the algebra is pbkrtest's to rounding
    at_r = kr_state(g.design, None, arr(ref["theta"]), ref["sigma"] ** 2, arr(ref["beta"]))
    np.testing.assert_allclose(at_r.PhiA, PhiA, rtol=KR_RTOL)
    np.testing.assert_allclose(at_r.Phi, np.asarray(ref["Phi"], float), rtol=KR_RTOL)
    p = len(ref["names"])
    ddf = [at_r.contrast_df(row)[1] for row in np.eye(p)]
    np.testing.assert_allclose(ddf, arr(ref["ddf"]), rtol=KR_RTOL)
    for key, cols in ref["spec"]["tests"].items():
        cols = [cols] if isinstance(cols, str) else cols
        L = np.zeros((len(cols), p))
        for i, c in enumerate(cols):
            L[i, ref["names"].index(c)] = 1.0
        fstat, q, den, pval = at_r.f_test(L)
        want = ref["ftests"][key]
        assert q == want["ndf"]
        assert den == pytest.approx(want["ddf"], rel=KR_RTOL)
        assert fstat == pytest.approx(want["Fstat"], rel=KR_RTOL)
        assert pval == pytest.approx(want["p_value"], rel=1e-6)


def _dense_kr(m, estimate_scale):
    """pbkrtest's formulas with n x n matrices (module docstring of kenward_roger.py) for
    the working model Sigma = phi (W^-1 + Z Lambda Lambda' Z')."""
    d = m.design
    X, Z = d.X, dense_z(d)
    w = working_weights(m)
    phi = float(m.phi)
    G, off = [], 0
    for t in d.terms:
        Zk = Z[:, off:off + t.q]
        for a, b in _pairs(t.p):
            E = np.zeros((t.p, t.p))
            E[a, b] = E[b, a] = 1.0
            G.append(Zk @ np.kron(np.eye(t.nlevels), E) @ Zk.T)
        off += t.q
    if estimate_scale:
        G.append(np.diag(1.0 / w))
    lam = sp.block_diag([sp.kron(sp.eye(t.nlevels), t.structure.lambda_(m.theta[sl]))
                         for t, sl in zip(d.terms, d.theta_slices(), strict=True)]).toarray()
    Sigma = phi * (np.diag(1.0 / w) + Z @ lam @ lam.T @ Z.T)
    return dense_kenward_roger(Sigma, X, G)


def _ddf_scalar(Phi, P, W, L):
    """pbkrtest's ``Lb_ddf`` for one contrast row."""
    L = np.atleast_2d(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    U = [Theta @ Phi @ Pi @ Phi for Pi in P]
    A1 = sum(W[i, j] * np.trace(U[i]) * np.trace(U[j]) for i in range(len(P))
             for j in range(len(P)))
    A2 = sum(W[i, j] * np.sum(U[i] * U[j].T) for i in range(len(P)) for j in range(len(P)))
    q = 1
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    rho = ((1 - A2 / q) / (1 - c2 * B)) ** 2 * (1 + c1 * B) / (1 - c3 * B) / q
    return 4 + (q + 2) / (q * rho - 1)


GLMM_CASES = {
    "cbpp_binomial": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp",
                      "binomial"),
    "owls_poisson": ("SiblingNegotiation ~ FoodTreatment + offset(logBroodSize) "
                     "+ (1 | Nest)", "Owls", "poisson"),
}


def _slope_poisson():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(12), 8)
    x = np.tile(np.linspace(-1, 1, 8), 12)
    b0, b1 = rng.normal(0, 0.5, 12), rng.normal(0, 0.3, 12)
    y = rng.poisson(np.exp(0.5 + 0.4 * x + b0[g] + b1[g] * x))
    import pandas as pd

    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.parametrize("name", [*sorted(GLMM_CASES), "slope_poisson", "gamma_log"])
def test_glmm_kr_matches_a_dense_implementation(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "slope_poisson":
            m = mm.glmer("y ~ x + (x | g)", _slope_poisson(), family="poisson")
        elif name == "gamma_log":
            m = mm.glmer("y ~ x + (1 | g)", mm.datasets.load("gammasim"),
                         family="Gamma", link="log")
        else:
            f, data, fam = GLMM_CASES[name]
            m = mm.glmer(f, mm.datasets.load(data), family=fam)
    st = glmm_kenward_roger_state(m)
    Phi, PhiA, P, W = _dense_kr(m, estimate_scale=m.family.has_dispersion)
    np.testing.assert_allclose(st.Phi, Phi, rtol=KR_RTOL)
    np.testing.assert_allclose(st.PhiA, PhiA, rtol=KR_RTOL)
    for row in np.eye(m.design.p):
        assert st.contrast_df(row)[1] == pytest.approx(_ddf_scalar(Phi, P, W, row),
                                                       rel=1e-6)


def test_glmm_kr_tables():
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    st = glmm_kenward_roger_state(g)
    ct = g.coef_table(ddf="kenward-roger")
    np.testing.assert_allclose(ct["Std. Error"], np.sqrt(np.diag(st.PhiA)), rtol=1e-12)
    assert list(ct.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    tab = g.anova_table(ddf="kenward-roger")
    L = np.eye(4)[1:]
    F, _, den, _ = st.f_test(L)
    assert tab.loc["period", "F value"] == pytest.approx(F, rel=1e-12)
    assert tab.loc["period", "DenDF"] == pytest.approx(den, rel=1e-12)
    assert tab.equals(g.anova_table(test="F"))             # KR: the GLMM's one df method
    # the intercept, estimated between 15 herds, has few df; within-herd contrasts many
    assert ct.loc["Intercept", "df"] < 30 < ct["df"].iloc[1:].min()
    with pytest.raises(mm.MixedModelsError, match="kenward-roger"):
        g.coef_table(ddf="satterthwaite")
