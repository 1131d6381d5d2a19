"""The closed-form low-order ARMA autocorrelations (rside/arma.low_order_acf*) against the
general recursion and its complex-step Jacobian."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.rside import arma

#: Agreement of the closed form with the recursion: both exact to rounding.
CLOSED_FORM_TOL = 1e-13


def _reference(u: list, p: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    coef = arma.arma_constrained(np.array(u), p)
    value = np.array(arma._acf(coef[:p].tolist(), coef[p:].tolist(), max_lag))
    jac = np.empty((len(u), max_lag + 1))
    for j in range(len(u)):
        uj = [complex(x) for x in u]
        uj[j] += 1j * arma.COMPLEX_STEP
        acf = arma._acf(arma._coefficients(uj[:p], -1.0), arma._coefficients(uj[p:], 1.0),
                        max_lag)
        jac[j] = [x.imag / arma.COMPLEX_STEP for x in acf]
    return value, jac


@pytest.mark.parametrize(("p", "q"), [(1, 1), (1, 0), (0, 1)])
def test_low_order_matches_recursion(p, q):
    rng = np.random.default_rng(p * 2 + q)
    for _ in range(50):
        u = rng.normal(scale=3.0, size=p + q).tolist()
        max_lag = int(rng.integers(0, 40))
        value, jac = _reference(u, p, max_lag)
        acf = arma.low_order_acf(u, p, max_lag)
        assert acf.shape == (max_lag + 2,) and acf[-1] == 0.0
        np.testing.assert_allclose(acf[:-1], value, rtol=0, atol=CLOSED_FORM_TOL)
        v2, j2 = arma.low_order_acf_and_jacobian(u, p, max_lag)
        np.testing.assert_allclose(v2, value, rtol=0, atol=CLOSED_FORM_TOL)
        np.testing.assert_allclose(j2, jac, rtol=0, atol=CLOSED_FORM_TOL)


def test_low_order_at_zero_phi():
    # phi = 0: rho_k = 0 beyond lag 1, d rho_2 / d phi = rho_1 (1 - 0) / 2
    value, jac = _reference([0.0, 0.7], 1, 5)
    v2, j2 = arma.low_order_acf_and_jacobian([0.0, 0.7], 1, 5)
    np.testing.assert_allclose(v2, value, atol=CLOSED_FORM_TOL)
    np.testing.assert_allclose(j2, jac, atol=CLOSED_FORM_TOL)


def test_dispatch_in_acf_and_jacobian():
    u = np.array([0.4, -1.2])
    v, j = arma.arma_acf_and_jacobian(u, 1, 12)
    ref_v, ref_j = _reference(u.tolist(), 1, 12)
    np.testing.assert_allclose(v, ref_v, atol=CLOSED_FORM_TOL)
    np.testing.assert_allclose(j, ref_j, atol=CLOSED_FORM_TOL)
    assert arma.is_low_order(1, 1) and not arma.is_low_order(2, 0)
