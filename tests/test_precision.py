"""Location and scale invariance of the fits (issue 12, item 1).

A large constant in the response or in a predictor must not change the fit: the criterion,
theta and sigma are invariant, beta transforms as the reparameterization says. Only lme4's
REML criterion moves when a predictor is *rescaled* (``log|R_X|^2`` gains ``2 log s``), and
these tests check that constant exactly too.

Where the limit is: a shift ``c`` of ``y`` leaves the response itself stored to
``eps * |c|`` (``y + 1e9`` keeps ~1e-7 of the residuals' unit); the criterion then agrees with
the unshifted fit to ~1e-9 relative at ``1e9`` and to ~1e-7 at ``1e11`` -- the rounding of the
data, not of the algorithm (fitting the rounded residuals ``(y + c) - c`` gives the same
difference).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.objective import LMMObjective

#: the issue's tolerances: criterion relative, theta absolute
CRIT_RTOL = 1e-8
THETA_ATOL = 1e-6
#: sigma, SEs and slopes of the LMM: determined by theta to the same order
LMM_RTOL = 1e-6
#: GLMM fits stop on the optimizer's tolerance in a flat valley, and the whitened
#: coordinates of the Laplace stage (a Cholesky factor of stage 1's covariance) follow the
#: predictor's scale only approximately, so the default tolerances leave theta ~1e-6 apart
#: (1.6e-6 on the Poisson case below) with the deviance equal to ~1e-12. The fits are
#: compared at tight optimizer tolerances, where the issue's 1e-6 for theta holds.
GLMM_TIGHT = {"xtol_abs": 1e-9, "ftol_abs": 1e-12}
GLMM_THETA_ATOL = 1e-6
GLMM_BETA_RTOL = 1e-6
#: standard errors of a GLMM come from a finite-difference Hessian (step 3e-3 in whitened
#: units, O(h^2) error ~1e-5)
GLMM_SE_RTOL = 1e-4


def issue_data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=96)
    return pd.DataFrame({
        "y": 1 + 2 * x + rng.normal(size=12)[g] + rng.normal(size=96), "x": x,
        "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in rng.integers(0, 5, 96)],
        "w": rng.uniform(0.5, 2.0, 96)})


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _assert_same_lmm(m0, m1, crit_shift=0.0):
    assert m1.objective - crit_shift == pytest.approx(m0.objective, rel=CRIT_RTOL)
    np.testing.assert_allclose(m1.theta, m0.theta, atol=THETA_ATOL)
    assert m1.sigma == pytest.approx(m0.sigma, rel=LMM_RTOL)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("shift", [1e7, 1e9])
def test_lmer_response_shift(reml, weights, shift):
    d = issue_data()
    m0 = mm.lmer("y ~ x + (1|g)", d, REML=reml, weights=weights)
    m1 = mm.lmer("y ~ x + (1|g)", d.assign(y=d.y + shift), REML=reml, weights=weights)
    _assert_same_lmm(m0, m1)
    assert m1.beta[1] == pytest.approx(m0.beta[1], rel=LMM_RTOL)
    # the intercept carries the shift, to the precision the shifted data are stored with
    assert m1.beta[0] - shift == pytest.approx(m0.beta[0], abs=1e-6 + 1e-15 * shift)
    np.testing.assert_allclose(m1.se, m0.se, rtol=LMM_RTOL)


def test_lmer_issue_example_reaches_lme4():
    """The issue's numbers: lme4 gives 279.06 for both fits (ours were 266.91 shifted)."""
    d = issue_data()
    m = mm.lmer("y ~ x + (1|g)", d.assign(y=d.y + 1e7))
    assert m.objective == pytest.approx(279.0584, abs=1e-3)
    assert m.theta[0] == pytest.approx(0.78808, abs=1e-4)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("optimizer", ["auto", "bobyqa"])
def test_lmer_predictor_shift_and_scale(reml, optimizer):
    d = issue_data()
    f = "y ~ x + (1|g) + (1|h)"
    m0 = _quiet(mm.lmer, f, d, REML=reml, optimizer=optimizer)
    shifted = _quiet(mm.lmer, f, d.assign(x=d.x + 1e5), REML=reml, optimizer=optimizer)
    _assert_same_lmm(m0, shifted)
    b0, b1 = m0.beta
    assert shifted.beta[1] == pytest.approx(b1, rel=LMM_RTOL)
    assert shifted.beta[0] == pytest.approx(b0 - 1e5 * b1, rel=LMM_RTOL)
    s = 1e-6
    scaled = _quiet(mm.lmer, f, d.assign(x=d.x * s), REML=reml, optimizer=optimizer)
    # lme4's REML criterion has log|X'V^{-1}X|: rescaling a column by s adds 2 log s
    _assert_same_lmm(m0, scaled, crit_shift=2.0 * np.log(s) if reml else 0.0)
    assert scaled.beta[1] * s == pytest.approx(b1, rel=LMM_RTOL)
    assert scaled.se.iloc[1] * s == pytest.approx(m0.se.iloc[1], rel=LMM_RTOL)


@pytest.mark.parametrize("method", ["dense", "blocked", "sparse"])
@pytest.mark.parametrize("reml", [True, False])
def test_lmm_criterion_at_fixed_theta_all_factorizations(method, reml):
    d = issue_data()
    spec = mm.parse_formula("y ~ x + (1|g) + (1|h)")
    theta = np.array([0.7, 0.3])
    base = LMMObjective(mm.materialize(spec, d, weights="w"), reml=reml, method=method)
    ref = base(theta)
    ref_beta = base.solve(theta).beta
    for y_shift, x_shift in [(1e7, 0.0), (0.0, 1e5), (1e6, -1e5)]:
        des = mm.materialize(spec, d.assign(y=d.y + y_shift, x=d.x + x_shift), weights="w")
        obj = LMMObjective(des, reml=reml, method=method)
        assert obj.method == method
        assert obj(theta) == pytest.approx(ref, rel=CRIT_RTOL)
        sol = obj.solve(theta)
        assert sol.beta[1] == pytest.approx(ref_beta[1], rel=1e-8)


def test_lmm_downstream_inference_sees_the_users_x():
    """Satterthwaite and Kenward-Roger df and the profile use the factor through the
    objective: a shifted predictor gives the same tables."""
    d = issue_data()
    f = "y ~ x + (1|g)"
    m0 = mm.lmer(f, d)
    m1 = mm.lmer(f, d.assign(x=d.x + 1e5))
    for method in ("satterthwaite", "kenward-roger"):
        # the slope's row (the intercept at x = -1e5 is another parameter, with other df)
        t0, t1 = m0.coef_table(method).loc["x"], m1.coef_table(method).loc["x"]
        assert t1["df"] == pytest.approx(t0["df"], rel=1e-5)
        assert t1["t value"] == pytest.approx(t0["t value"], rel=1e-6)
    ci0 = m0.confint(method="profile", parm=["x"])
    ci1 = m1.confint(method="profile", parm=["x"])
    np.testing.assert_allclose(ci1.to_numpy(), ci0.to_numpy(), rtol=1e-5)


def glmm_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(size=400)
    eta = -0.5 + 0.8 * x + 0.7 * rng.normal(size=40)[g]
    return pd.DataFrame({"yb": rng.binomial(1, 1 / (1 + np.exp(-eta))),
                         "yp": rng.poisson(np.exp(eta)), "x": x, "g": g.astype(str)})


@pytest.mark.parametrize("family,response", [("binomial", "yb"), ("poisson", "yp")])
@pytest.mark.parametrize("nagq", [0, 1, 5])
def test_glmer_predictor_shift_and_scale(family, response, nagq):
    d = glmm_data()
    f = f"{response} ~ x + (1|g)"
    m0 = mm.glmer(f, d, family=family, nAGQ=nagq, optimizer_settings=GLMM_TIGHT)
    for shift, scale in [(1e5, 1.0), (0.0, 1e-6), (1e5, 1e3)]:
        x = d.x * scale + shift
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.ScalingWarning)
            m1 = mm.glmer(f, d.assign(x=x), family=family, nAGQ=nagq,
                          optimizer_settings=GLMM_TIGHT)
        # no convergence message; lme4's rescaling advice (a "fit warning" in its
        # summary too) exactly when x's sd leaves [1e-3, 1e3]
        rescale = [msg for msg in m1.messages if msg.startswith("Some predictor variables")]
        sd = float(np.std(x, ddof=1))
        assert len(m1.messages) == len(rescale) == int(not 1e-3 <= sd <= 1e3)
        assert m1.objective == pytest.approx(m0.objective, rel=CRIT_RTOL)
        np.testing.assert_allclose(m1.theta, m0.theta, atol=GLMM_THETA_ATOL)
        b0, b1 = m0.beta
        assert m1.beta[1] * scale == pytest.approx(b1, rel=GLMM_BETA_RTOL)
        assert m1.beta[0] == pytest.approx(b0 - shift * b1 / scale, rel=GLMM_BETA_RTOL,
                                           abs=GLMM_BETA_RTOL)
        assert m1.se.iloc[1] * scale == pytest.approx(m0.se.iloc[1], rel=GLMM_SE_RTOL)


def test_glmer_deviance_at_fixed_parameters_is_invariant():
    """The Laplace deviance at the same model (beta mapped to the shifted predictor) is the
    same number, not just the same optimum."""
    d = glmm_data()
    f = "yb ~ x + (1|g)"
    fam = mm.families.Binomial()
    from mixedmodels.fitting.glmm import glmm_design
    from mixedmodels.objective import GLMMObjective

    o0 = GLMMObjective(glmm_design(f, d, fam), fam, 1)
    o1 = GLMMObjective(glmm_design(f, d.assign(x=d.x + 1e5), fam), fam, 1)
    for theta, b0, b1 in [(0.7, -0.4, 0.8), (1.3, 0.2, -0.5)]:
        ref = o0(np.array([theta, b0, b1]))
        assert o1(np.array([theta, b0 - 1e5 * b1, b1])) == pytest.approx(ref, rel=1e-9)
    # the nAGQ = 0 criterion estimates beta inside PIRLS: the joint solve is where an
    # ill-conditioned X'WX lost its digits
    assert o1.stage0(np.array([0.9])) == pytest.approx(o0.stage0(np.array([0.9])), rel=1e-9)


def test_glmer_binomial_proportions_with_weights_shifted_predictor():
    """Prior weights (numbers of trials) enter the basis: proportions with trials."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(30), 6)
    x = rng.normal(size=g.size)
    trials = rng.integers(1, 12, g.size)
    p = 1 / (1 + np.exp(-(-0.3 + 0.6 * x + 0.5 * rng.normal(size=30)[g])))
    d = pd.DataFrame({"prop": rng.binomial(trials, p) / trials, "n": trials, "x": x,
                      "g": g.astype(str)})
    for nagq in (0, 1):
        m0 = mm.glmer("prop ~ x + (1|g)", d, family="binomial", weights="n", nAGQ=nagq,
                      optimizer_settings=GLMM_TIGHT)
        m1 = mm.glmer("prop ~ x + (1|g)", d.assign(x=d.x * 1e3 + 1e5), family="binomial",
                      weights="n", nAGQ=nagq, optimizer_settings=GLMM_TIGHT)
        assert m1.objective == pytest.approx(m0.objective, rel=CRIT_RTOL)
        np.testing.assert_allclose(m1.theta, m0.theta, atol=GLMM_THETA_ATOL)
        assert m1.beta[1] * 1e3 == pytest.approx(m0.beta[1], rel=GLMM_BETA_RTOL)
