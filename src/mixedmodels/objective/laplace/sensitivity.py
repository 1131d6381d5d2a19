r"""How the conditional modes move with the parameters: ``d\hat u / dx`` of the Laplace engine.

At the mode ``\hat u(x)`` of ``f(u; x) = -\sum_i l_i(\eta_i) + \tfrac12 u' P u`` the gradient
``g(u; x) = P u - A(\theta)' l'`` vanishes, so by the implicit function theorem

.. math::

    \frac{d\hat u}{dx_j} = -H^{-1} \frac{\partial g}{\partial x_j}
        = H^{-1}\Big[\big(\partial A/\partial x_j\big)' l'
          + A' \, l''_{\cdot,\,m} \, \partial\eta_m/\partial x_j\Big],

with ``H`` the Hessian of ``f`` at the mode (the engine's factor), ``l'``, ``l''`` the
derivatives of the log-density over the random-effects channels (rows) and all channels
(``m``, columns), and ``\partial\eta/\partial x_j`` the change of every channel's linear
predictor at fixed ``u``: a column of ``X_c`` for a fixed effect of component ``c``, 1 for a
scalar family parameter, ``(\partial A/\partial\theta_j) u`` for a covariance parameter
(which also changes ``A`` itself: the first term). This is what TMB's ``sdreport`` uses to
carry the parameters' uncertainty into quantities that depend on the random effects
(:mod:`mixedmodels.prediction.delta`), and the same right-hand side as the engine's
first-order prediction of the modes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_predictor_jacobian", "mode_jacobian", "theta_slot_derivatives"]


def theta_slot_derivatives(obj, x: np.ndarray):
    """Per covariance parameter: ``(layout index, structure term, dLambda_t/dtheta_j)``.

    Parameters
    ----------
    obj : LaplaceObjective
    x : ndarray
        Full parameter vector.

    Returns
    -------
    list of (int, RandomTermSlot, ndarray (p, p))
    """
    out = []
    for ts in obj.structure.terms:
        block = obj._theta_block_of(ts)
        theta_t = obj.layout.get(x, block)[obj._local_theta(ts)]
        dlam = ts.term.structure.lambda_jacobian(theta_t)
        start = obj.theta_index(ts).start
        out.extend((start + j, ts, dlam[j]) for j in range(dlam.shape[0]))
    return out


def linear_predictor_jacobian(obj, x: np.ndarray):
    """The fixed-``u`` derivatives of the fitting rows' linear predictors.

    Parameters
    ----------
    obj : LaplaceObjective
    x : ndarray

    Returns
    -------
    list of (int, int, ndarray (n,))
        ``(layout index, channel, d eta_channel / d x_index)`` for every fixed effect and
        scalar family parameter (covariance parameters: see
        :func:`theta_slot_derivatives`).
    """
    out = []
    for j, X, _, block in obj._linear:
        if block in obj.layout and X.shape[1]:
            sl = obj.layout.slice(block)
            out.extend((sl.start + c, j, X[:, c]) for c in range(X.shape[1]))
    for j, block in obj._scalar:
        out.append((obj.layout.slice(block).start, j, np.ones(obj.n)))
    return out


def mode_jacobian(obj, x: np.ndarray) -> np.ndarray:
    """``d\\hat u / dx`` at ``x`` (module docstring), over every entry of the layout.

    Leaves the objective's workspace factored at ``x``'s modes (``obj.hessian``), which the
    callers use for ``H^{-1}``.

    Parameters
    ----------
    obj : LaplaceObjective
        With random effects (``obj.q > 0``).
    x : ndarray
        Full parameter vector (usually the optimum).

    Returns
    -------
    ndarray (q, layout size)
        Column ``j``: the change of the modes per unit change of ``x_j`` (zero for
        entries that do not move them).
    """
    x = np.asarray(x, dtype=float)
    sol, jet, a = obj.solve(x, order=2, full=True)
    S, re = obj.structure, obj.re
    d1_re = jet.d1[:, re]                  # (n, C)
    d2_rm = jet.d2[:, re, :]               # (n, C, m)
    d2_rr = d2_rm[:, :, re]                # (n, C, C)
    rhs = np.zeros((obj.q, obj.layout.size))
    for idx, ch, d_eta in linear_predictor_jacobian(obj, x):
        rhs[:, idx] = S.scatter(a, d2_rm[:, :, ch] * d_eta[:, None])
    u = sol.u
    for idx, ts, dlam in theta_slot_derivatives(obj, x):
        da = np.zeros_like(a)
        da[:, ts.slots] = ts.term.Z @ dlam
        d_eta_re = S.eta(da, u)                                  # (n, C)
        rhs[:, idx] = (S.scatter(da, d1_re)
                       + S.scatter(a, (d2_rr @ d_eta_re[:, :, None])[:, :, 0]))
    return solve_columns(obj.hessian, rhs)


def solve_columns(hessian, rhs: np.ndarray) -> np.ndarray:
    """``H^{-1} R`` column by column through the kernel's ``solve`` (its block-diagonal
    kernel solves one vector at a time; the columns are the few parameters)."""
    out = np.zeros_like(rhs)
    for j in np.flatnonzero(np.any(rhs != 0.0, axis=0)):
        out[:, j] = hessian.solve(rhs[:, j])
    return out
