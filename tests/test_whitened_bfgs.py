"""The Laplace stage's own BFGS (fitting/glmm_gradient.whitened_bfgs) against the exact
minimizers of smooth convex functions whitened as the stage sees them (Hessian near 2 I)
and of badly scaled ones (where its unit-step model is wrong), and its stops."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.fitting.glmm_gradient import whitened_bfgs

#: The gradient tolerance asked for, and the distance to the minimizer it implies for a
#: curvature of at least ~0.5 (here: every case below).
GTOL = 1e-8
X_ATOL = 1e-7


def _convex(A: np.ndarray, b: np.ndarray, quartic: float):
    """``F(z) = (z - b)' A (z - b) + quartic * sum (z - b)^4``, minimum 0 at ``b``."""
    def fg(z):
        d = z - b
        return float(d @ A @ d + quartic * np.sum(d ** 4)), 2.0 * A @ d + 4.0 * quartic * d ** 3
    return fg


@pytest.mark.parametrize("scale,quartic", [(1.0, 0.0), (1.0, 0.3), (20.0, 0.1), (0.3, 1.0)])
def test_reaches_the_minimizer(scale, quartic):
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    A = scale * Q @ np.diag([0.6, 0.9, 1.0, 1.3, 1.8]) @ Q.T
    b = rng.standard_normal(5)
    calls = []

    def fg(z):
        calls.append(1)
        return _convex(A, b, quartic)(z)

    res = whitened_bfgs(fg, 5, GTOL)
    assert res.success
    np.testing.assert_allclose(res.x, b, atol=X_ATOL, rtol=0)
    assert np.max(np.abs(res.jac)) <= GTOL
    assert len(calls) < 60


def test_whitened_quadratic_takes_newton_steps():
    """With the Hessian exactly 2 I the first step lands on the minimizer."""
    b = np.array([0.3, -1.2, 0.7])
    calls = []

    def fg(z):
        calls.append(1)
        return _convex(np.eye(3), b, 0.0)(z)

    res = whitened_bfgs(fg, 3, GTOL)
    assert res.success and len(calls) == 2
    np.testing.assert_allclose(res.x, b, atol=1e-14)


def test_infinite_trials_shorten_the_step():
    """A non-finite deviance (PIRLS failed at the trial) is backtracked from."""
    b = np.array([2.0, -1.0])
    base = _convex(np.eye(2), b, 0.0)

    def fg(z):
        if np.max(np.abs(z)) > 1.5:
            return np.inf, np.full(2, np.nan)
        return base(z)

    res = whitened_bfgs(fg, 2, GTOL)
    assert not res.success                  # the minimizer is out of reach
    assert np.all(np.isfinite(res.x)) and np.max(np.abs(res.x)) <= 1.5
    assert res.fun < base(np.zeros(2))[0]


def test_rounding_noise_at_the_optimum_counts_as_converged():
    """A deviance that cannot resolve the last steps (noise 1e-9) stops as converged
    when the gradient is small, as scipy's "precision loss"."""
    b = np.array([0.5, 0.25])
    base = _convex(np.eye(2), b, 0.2)
    rng = np.random.default_rng(0)

    def fg(z):
        f, g = base(z)
        return f + 1e-9 * rng.standard_normal(), g + 1e-9 * rng.standard_normal(2)

    res = whitened_bfgs(fg, 2, 1e-12)
    np.testing.assert_allclose(res.x, b, atol=1e-4)
