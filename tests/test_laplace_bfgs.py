"""The Laplace fits' dense BFGS against scipy's ``minimize(method="BFGS")``: the same
iterates, values and inverse Hessian up to rounding (the update is written in its rank-two
form, scipy's as two matrix products), from the identity and from a given start, and the
same stop when the callback raises ``StopIteration``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from mixedmodels.fitting.laplace_bfgs import BFGS_CALLBACK_STOP, dense_bfgs

#: Rosenbrock's curved valley amplifies the update's rounding along the path (~3e-6 at
#: its widest, 46 iterations); a convex problem keeps it at rounding.
ROSEN_PATH_ATOL = 1e-4
CONVEX_PATH_ATOL = 1e-10
#: The optimum itself, where both stop at gtol = 1e-6.
X_ATOL = 1e-7


def _fg(z):
    return rosen(z), rosen_der(z)


def _convex(z):
    w = np.arange(1.0, z.size + 1.0)
    return float(w @ (z - 0.5) ** 2 + np.sum(z**4)), 2.0 * w * (z - 0.5) + 4.0 * z**3


@pytest.mark.parametrize("problem, path_atol", [(_fg, ROSEN_PATH_ATOL),
                                               (_convex, CONVEX_PATH_ATOL)])
@pytest.mark.parametrize("start_hessian", [False, True])
def test_dense_bfgs_takes_scipys_iterates(start_hessian, problem, path_atol):
    x0 = np.array([-1.2, 1.0, 0.4, -0.3, 0.8])
    opts = {"gtol": 1e-6, "maxiter": 500}
    if start_hessian:
        A = np.random.default_rng(3).normal(size=(5, 5))
        opts["hess_inv0"] = 0.01 * (A @ A.T + np.eye(5))
    path_ours, path_scipy = [], []

    def record(intermediate_result):            # (scipy passes x to other names)
        path_scipy.append(intermediate_result.x)

    ours = dense_bfgs(problem, x0, hess_inv0=opts.get("hess_inv0"), gtol=opts["gtol"],
                      maxiter=opts["maxiter"], callback=lambda r: path_ours.append(r.x))
    ref = minimize(problem, x0, jac=True, method="BFGS", options=opts, callback=record)
    assert ours.success and ref.success
    assert ours.nit == ref.nit and ours.nfev == ref.nfev
    np.testing.assert_allclose(np.array(path_ours), np.array(path_scipy), rtol=0,
                               atol=path_atol)
    np.testing.assert_allclose(ours.x, ref.x, rtol=0, atol=min(path_atol, X_ATOL))
    scale = np.max(np.abs(ref.hess_inv))
    np.testing.assert_allclose(ours.hess_inv, ref.hess_inv, rtol=0, atol=path_atol * scale)
    assert abs(ours.fun - ref.fun) <= 1e-12 * max(1.0, abs(ref.fun))


def test_dense_bfgs_stops_where_the_callback_raises():
    x0 = np.array([-1.2, 1.0, 0.4])
    seen = []

    def stop_at_three(r):
        seen.append(r.x)
        if len(seen) == 3:
            raise StopIteration

    ours = dense_bfgs(_fg, x0, gtol=1e-6, maxiter=500, callback=stop_at_three)
    assert ours.status == BFGS_CALLBACK_STOP and not ours.success
    assert ours.nit == 3
    np.testing.assert_array_equal(ours.x, seen[-1])
