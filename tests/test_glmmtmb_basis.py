"""glmmtmb's fixed-effects basis: predictors far from zero change neither the optimum nor
the standard errors (src/mixedmodels/objective/laplace/basis.py).

Oracles: the same model fitted with the predictor centred (an exact reparameterization:
``beta_unshifted = A beta_shifted``, so ``V_unshifted = A V_shifted A'`` and the objectives
are equal), and glmmTMB 1.1.5's fits of the shifted models (tests/fixtures/glmmtmb,
``contra_shift`` and the awkward ``zinb2_shift``, made by tools/r/glmmtmb_fixtures.R).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from glmmtmb_fixtures import load, load_data
from mixedmodels.objective.laplace.basis import fixed_effects_basis

#: Objectives of a model and its reparameterization (deviance units).
INVARIANT_OBJECTIVE_ATOL = 1e-7
#: Covariances of the reparameterized fits mapped onto each other, relative to the sds.
INVARIANT_VCOV_RTOL = 1e-6
#: Our SEs against glmmTMB's on the shifted contraception model (ten times stricter than
#: the corpus's SE_RTOL: before the basis they were 2.4e-3 off).
SHIFT_SE_RTOL = 1e-4
#: SEs against glmmTMB's where its fit warned (nlminb's NA/NaN evaluations on the way).
AWKWARD_SE_RTOL = 1e-3


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb(formula, data, **kw)


def _assert_vcov_maps(V_to, A, V_from):
    """``V_to == A V_from A'`` relative to the sds of ``V_to``."""
    mapped = A @ V_from @ A.T
    sd = np.sqrt(np.diag(V_to))
    np.testing.assert_allclose(mapped / np.outer(sd, sd), V_to / np.outer(sd, sd),
                               rtol=0, atol=INVARIANT_VCOV_RTOL)


@pytest.fixture(scope="module")
def contra():
    fx = load("contra_shift")
    data = load_data(fx)
    rhs = "+ urban + livch + (urban | district)"
    shifted = _fit(f"use ~ age_s + I(age_s**2) {rhs}", data, family="binomial")
    centred = _fit(f"use ~ age + I(age**2) {rhs}", data, family="binomial")
    return fx, shifted, centred


def test_shifted_predictor_same_optimum_and_vcov(contra):
    _, shifted, centred = contra
    assert shifted.objective == pytest.approx(centred.objective,
                                              abs=INVARIANT_OBJECTIVE_ATOL)
    # a + b (age + 50) + c (age + 50)^2 = (a + 50 b + 2500 c) + (b + 100 c) age + c age^2
    s = 50.0
    A = np.eye(shifted.fixef.size)
    A[0, 1], A[0, 2], A[1, 2] = s, s * s, 2.0 * s
    np.testing.assert_allclose(A @ shifted.fixef.to_numpy(), centred.fixef.to_numpy(),
                               rtol=1e-6, atol=1e-8)
    _assert_vcov_maps(centred.vcov.to_numpy(), A, shifted.vcov.to_numpy())
    # the coefficients the shift leaves alone: their SEs agree to 1e-6 relative
    se_s, se_c = shifted.se.to_numpy()[3:], centred.se.to_numpy()[3:]
    np.testing.assert_allclose(se_s, se_c, rtol=INVARIANT_VCOV_RTOL)


def test_shifted_predictor_matches_glmmtmb(contra):
    fx, shifted, _ = contra
    assert shifted.objective <= fx["objective"] + 1e-6
    se = dict(zip(shifted.design.components["cond"].fixed.r_names, shifted.se.to_numpy(),
                  strict=True))
    for name, ref in fx["se"].items():
        assert se[name] == pytest.approx(ref, rel=SHIFT_SE_RTOL), name


def test_shifted_predictor_optimizer_not_slowed(contra):
    _, shifted, centred = contra
    # the optimizer works in the basis, so the shift costs no extra gradients (before:
    # 93 against 48)
    assert shifted.fit.n_gradients <= centred.fit.n_gradients + 4


def test_thousands_in_every_component():
    """Zero-inflated NB2 with a year (2000..2020) in the conditional and zero-inflation
    models and an elevation in metres (1000..3000) in the conditional and dispersion
    models, against the same model on centred and rescaled predictors, and glmmTMB."""
    fx = load("zinb2_shift", "awkward")
    data = load_data(fx)
    shifted = _fit("y ~ year + elev + (1 | g)", data, family="nbinom2", ziformula="~year",
                   dispformula="~elev")
    data = data.assign(yr=data["year"] - 2010.0, km=(data["elev"] - 2000.0) / 1000.0)
    centred = _fit("y ~ yr + km + (1 | g)", data, family="nbinom2", ziformula="~yr",
                   dispformula="~km")
    assert shifted.objective == pytest.approx(centred.objective,
                                              abs=INVARIANT_OBJECTIVE_ATOL)
    assert shifted.objective <= fx["objective"] + 1e-4
    # per block: intercept' = intercept + 2010 b_year + 2000 b_elev, b_km = 1000 b_elev
    blocks = {"cond": [("year", 2010.0, 1.0), ("elev", 2000.0, 1000.0)],
              "zi": [("year", 2010.0, 1.0)], "disp": [("elev", 2000.0, 1000.0)]}
    layout = shifted.layout
    A = np.eye(layout.n_free)
    free = list(layout.free_labels())
    for comp, cols in blocks.items():
        i0 = free.index(f"{comp}~Intercept")
        for name, shift, scale in cols:
            j = free.index(f"{comp}~{name}")
            A[i0, j] = shift
            A[j, j] = scale
    x_s, x_c = layout.free(shifted.x), layout.free(centred.x)
    np.testing.assert_allclose(A @ x_s, x_c, rtol=1e-5, atol=1e-8)
    _assert_vcov_maps(centred.vcov_full.to_numpy(), A, shifted.vcov_full.to_numpy())
    for comp, key in (("cond", "se"), ("zi", "se_zi"), ("disp", "se_disp")):
        ours = shifted.coef_table(comp)["Std. Error"].to_numpy()
        np.testing.assert_allclose(ours, list(fx[key].values()), rtol=AWKWARD_SE_RTOL,
                                   err_msg=comp)


def test_basis_is_orthogonal_and_exact():
    fx = load("zinb2_shift", "awkward")
    m = _fit("y ~ year + elev + (1 | g)", load_data(fx), family="nbinom2",
             ziformula="~year", dispformula="~elev")
    obj = m.objective_function
    B = fixed_effects_basis(obj)
    assert len(B.blocks) == 3
    for _sl, T, T_inv, Xt in B.blocks:
        np.testing.assert_allclose(T @ T_inv, np.eye(T.shape[0]), atol=1e-9)
        np.testing.assert_allclose(Xt.T @ Xt / obj.n, np.eye(T.shape[0]), atol=1e-10)
    x = m.x
    np.testing.assert_allclose(B.to_user(B.from_user(x)), x, rtol=1e-12)
    # the fixed effects in the basis are on the scale of the linear predictor
    assert np.max(np.abs(B.from_user(x))) < 50.0


def test_basis_identity_for_fixed_and_bounded_blocks():
    data = mm.datasets.load("sleepstudy")
    m = _fit("Reaction ~ Days + (1 | Subject)", data, dispformula="~0")
    B = fixed_effects_basis(m.objective_function)
    names = [m.layout.labels[sl.start] for sl, *_ in B.blocks]
    assert names == ["cond~Intercept"]          # disp~0 is held fixed: no basis


#: REML integrates the conditional fixed effects in the inner problem, in the basis of
#: random_structure (X~ = X T): a shifted predictor leaves the criterion and the SEs as
#: an exact reparameterization does (before that basis: 4.6e-5 off on the criterion,
#: 2.3e-5 relative on the SEs, 1.2e-4 with the square of Days + 1000).
REML_SHIFT_OBJECTIVE_ATOL = INVARIANT_OBJECTIVE_ATOL
REML_SHIFT_SE_RTOL = INVARIANT_VCOV_RTOL


def test_reml_shifted_quadratic_converges():
    """A predictor around 1000 and its square in a REML fit: the integrated fixed effects
    are on the user's scale, so the inner Newton steps must not be capped as the random
    effects' are (before: 'the conditional modes did not converge')."""
    data = mm.datasets.load("sleepstudy").assign(D2=lambda d: d["Days"] + 1000.0)
    fits = [_fit(f"Reaction ~ {v} + I({v}**2) + (Days | Subject)", data, REML=True)
            for v in ("Days", "D2")]
    # shifting leaves the REML criterion unchanged (unit-triangular map of the columns)
    assert fits[1].objective == pytest.approx(fits[0].objective,
                                              abs=REML_SHIFT_OBJECTIVE_ATOL)
    assert fits[1].se.iloc[2] == pytest.approx(fits[0].se.iloc[2], rel=REML_SHIFT_SE_RTOL)


def _unit_triangular_shift(s: float) -> np.ndarray:
    """``A`` with ``A beta_shifted = beta_unshifted`` for ``1, x + s, (x + s)^2``."""
    A = np.eye(3)
    A[0, 1], A[0, 2], A[1, 2] = s, s * s, 2.0 * s
    return A


#: The two fits' covariances mapped onto each other, relative to the sds: each Hessian is
#: taken where its quasi-Newton phase stopped (laplace_fit.NEWTON_REUSE: ~1e-5 of the SEs),
#: so two fits on different paths agree to that, not to the invariance of one fit.
REML_SHIFT_VCOV_RTOL = 1e-5
#: glmmTMB 1.1.5's own REML criterion on the shifted models, against its criterion on the
#: unshifted (well-conditioned) ones: TMB's log-determinant loses digits to the
#: conditioning (measured 3.7e-5 and 5.4e-5 low; the first stopped with "false
#: convergence"), so the shifted fixtures are checked only to this.
TMB_SHIFTED_OBJECTIVE_ATOL = 1e-4


@pytest.mark.parametrize("disp", ["~1", "~late"])
def test_reml_shifted_square_matches_glmmtmb_unshifted(disp):
    """REML on Days + 1000 and its square (``X'X`` condition ~1e13) against glmmTMB's fit
    of the same model on Days (``reml_unshift_*``: an exact reparameterization with a
    unit-triangular map, so the REML criterion is unchanged): criterion, fixed effects
    and standard errors mapped back, against glmmTMB and against our own unshifted fit;
    lme4's REML criterion as a third opinion for ``~1``. ``~1`` takes the profiled
    Gaussian start, ``~late`` the general engine's."""
    tag = "disp" if disp == "~late" else "sq"
    ref = load(f"reml_unshift_{tag}")
    tmb_shifted = load(f"reml_shift_{tag}", "awkward")
    data = load_data(ref)
    rhs = "+ (1 | Subject)"
    shifted = _fit(f"Reaction ~ Days_s + I(Days_s**2) {rhs}", data, REML=True,
                   dispformula=disp)
    plain = _fit(f"Reaction ~ Days + I(Days**2) {rhs}", data, REML=True, dispformula=disp)
    assert shifted.objective == pytest.approx(plain.objective,
                                              abs=REML_SHIFT_OBJECTIVE_ATOL)
    assert shifted.objective <= ref["objective"] + REML_SHIFT_OBJECTIVE_ATOL
    assert shifted.objective == pytest.approx(tmb_shifted["objective"],
                                              abs=TMB_SHIFTED_OBJECTIVE_ATOL)
    A = _unit_triangular_shift(1000.0)
    beta = A @ shifted.fixef.to_numpy()
    np.testing.assert_allclose(beta, plain.fixef.to_numpy(), rtol=1e-6, atol=1e-8)
    V = A @ shifted.vcov.to_numpy() @ A.T
    sd = np.sqrt(np.diag(V))
    np.testing.assert_allclose(V / np.outer(sd, sd), plain.vcov.to_numpy() / np.outer(sd, sd),
                               rtol=0, atol=REML_SHIFT_VCOV_RTOL)
    np.testing.assert_allclose(beta, list(ref["beta"].values()), rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(V)), list(ref["se"].values()),
                               rtol=SHIFT_SE_RTOL)
    np.testing.assert_allclose(shifted.fixef_disp.to_numpy(), plain.fixef_disp.to_numpy(),
                               rtol=1e-6, atol=1e-8)
    if disp == "~1":
        lmer = mm.lmer(f"Reaction ~ Days + I(Days**2) {rhs}", data, REML=True)
        assert shifted.objective == pytest.approx(lmer.objective, abs=1e-6)


def test_reml_shifted_random_slope():
    """A random slope on Days + 1000 (intercept and slope correlated ~ -1): the profiled
    start stopped on a saddle with the slope's Cholesky entry at zero, 9.7 REML units
    above glmmTMB's optimum (``reml_shift_slope``, the same criterion as
    ``sleep_slope_reml`` on Days)."""
    fx = load("reml_shift_slope")
    m = _fit("Reaction ~ Days_s + (Days_s | Subject)", load_data(fx), REML=True)
    assert m.fit.converged
    assert m.objective <= fx["objective"] + 1e-6
    assert m.objective == pytest.approx(load("sleep_slope_reml")["objective"], abs=1e-6)
