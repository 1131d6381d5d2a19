"""AR(1)'s closed-form factor derivatives and the glmer route's confirmation from the
engine's gradient (benchmarks/results/hetar1_notes.md): each gives what the general path
gives."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mixedmodels.covariance._factor import chol_derivatives
from mixedmodels.covariance.correlated import AR1, ScaledCorrelation

#: Closed form against LAPACK's inverse and Murray's formula: rounding of a p <= 9 factor
#: (the generic form loses digits as phi nears one: 2e-13 at t = 20, phi = 0.9988).
CLOSED_FORM_RTOL = 1e-11
#: dL/dt against central differences of LAPACK's Cholesky factor.
DIFFERENCE_RTOL = 1e-6


def _ts(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [*rng.normal(0.0, 3.0, 40), 0.0, 1e-3, -1e-3, 20.0, -20.0]


@pytest.mark.parametrize("p", [2, 3, 6, 9])
def test_ar1_factor_derivatives_are_the_generic_form(p):
    s = AR1(p, hom=False)
    for t0 in _ts(p):
        t = np.array([t0])
        L = np.linalg.cholesky(s.correlation(t))
        Linv, rel = s._factor_derivatives(t, L)
        Linv0, rel0 = ScaledCorrelation._factor_derivatives(s, t, L)
        np.testing.assert_allclose(Linv, Linv0, rtol=0,
                                   atol=CLOSED_FORM_RTOL * np.abs(Linv0).max())
        np.testing.assert_allclose(rel, rel0, rtol=0,
                                   atol=CLOSED_FORM_RTOL * np.abs(rel0).max())
        np.testing.assert_allclose(Linv @ L, np.eye(p), rtol=0, atol=CLOSED_FORM_RTOL)


@pytest.mark.parametrize("p", [2, 6])
def test_ar1_factor_derivative_matches_differences(p):
    # dL = L (L^{-1} dL) against central differences of the Cholesky factor itself, an
    # independent computation of the same derivative
    s = AR1(p, hom=True)
    h = 1e-6
    for t0 in (-1.3, 0.2, 2.5):
        t = np.array([t0])
        L = np.linalg.cholesky(s.correlation(t))
        _, rel = s._factor_derivatives(t, L)
        dL = (np.linalg.cholesky(s.correlation(t + h))
              - np.linalg.cholesky(s.correlation(t - h))) / (2 * h)
        np.testing.assert_allclose(L @ rel[0], dL, rtol=0,
                                   atol=DIFFERENCE_RTOL * np.abs(dL).max())
        np.testing.assert_allclose(chol_derivatives(L, s.correlation_jacobian(t))[0],
                                   L @ rel[0], rtol=0, atol=CLOSED_FORM_RTOL)


def test_ar1_factor_derivatives_at_a_singular_correlation():
    s = AR1(4, hom=False)
    with pytest.raises(np.linalg.LinAlgError):
        s._factor_derivatives(np.array([1e9]), np.eye(4))


def test_hetar1_relative_jacobian_with_a_zero_sd():
    # hetar1_pois's optimum has one sd at exp(-17.9): M stays free of the sds
    s = AR1(6, hom=False)
    theta = np.r_[-0.35, -0.33, -0.51, -0.75, -0.62, -17.94, 1.065]
    M = s.relative_jacobian(theta)
    lam = s.lambda_(theta)
    dlam = s.lambda_jacobian(theta)
    for j in range(s.n_theta):
        np.testing.assert_allclose(lam @ M[j], dlam[j], rtol=0,
                                   atol=CLOSED_FORM_RTOL * np.abs(dlam[j]).max())


#: The engine's gradient against glmer's exact gradient at the routed optimum: two codes
#: for the derivative of the same deviance (deviance units per unit of parameter; the
#: gradients there are ~1e-4, their modes converged to 1e-9).
GRADIENT_ATOL = 1e-6


def _glmer(fid: str):
    import mixedmodels as mm
    import structures_fixtures as sf

    fx = sf.load(fid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(fx["formula"], sf.load_data(fx), family=fx["family"],
                        covariance_matrices=sf.known_matrices())


@pytest.mark.parametrize("fid", ["hetar1_pois", "homdiag_pois", "ar1_pois", "cs_binom",
                                 "propto_pois"])
def test_route_confirms_with_the_engines_gradient(fid):
    # the route's decrement test uses the engine's gradient (no glmer gradient is
    # evaluated on a fit that needs no Newton step): it is glmer's own exact gradient at
    # that point, and glmer's deviance there is the engine's objective
    import mixedmodels.objective.glmm_gradient as gg
    from mixedmodels.fitting.glmm_structured import (
        DECREMENT_TOL,
        OBJECTIVE_AGREEMENT_TOL,
        _engine_fit,
        _glmer_order,
    )

    m = _glmer(fid)
    assert m.opt.optimizer.startswith("glmmtmb engine")
    obj = m.objective_function
    x = np.asarray(m.opt.x, dtype=float)
    f, g = gg.LaplaceGradient(obj)(x)
    assert abs(f - m.objective) <= OBJECTIVE_AGREEMENT_TOL
    # the engine's Hessian of the same fit, in glmer's order (the route's H)
    tmb, _ = _engine_fit(m.design, m.family)
    order = _glmer_order(obj, tmb)
    H = tmb.fit.hessian[np.ix_(order, order)]
    H = 0.5 * (H + H.T)
    # derivatives are stored in coordinates x = x* + T z with T' H T = 2 I
    T = np.sqrt(2.0) * np.linalg.inv(np.linalg.cholesky(H)).T
    np.testing.assert_allclose(m.derivatives.gradient, T.T @ g, rtol=0, atol=GRADIENT_ATOL)
    # glmer's own gradient confirms the optimum as the engine's did
    assert 0.5 * float(g @ np.linalg.solve(H, g)) < DECREMENT_TOL
    assert m.convergence.converged
