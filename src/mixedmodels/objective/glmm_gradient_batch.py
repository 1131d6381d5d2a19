r"""The Laplace gradient at several points at once, at modes predicted from one
reference, for a model with one scalar random-effects term.

The forward differences of the standard errors' Hessian
(:func:`~mixedmodels.fitting.glmm_gradient.whitened_derivatives`) take the gradient at
``k`` points ``x* + h T e_j`` with the modes predicted from the optimum,
:meth:`~.glmm_gradient.LaplaceGradient.gradient_at_predicted`. With one scalar term
(``M`` diagonal, :meth:`~.glmm_gradient.LaplaceGradient._scalar_pieces`) each step of
that gradient is elementwise on the rows or a sum over each level's rows, so the ``k``
gradients are formed on ``(k, n)`` arrays in one pass: per point the same operations in
the same order (the level sums one ``bincount`` over ``k`` blocks of levels, which adds
each level's rows in the same order as ``k`` calls do; the products with ``X`` and ``z``
one per point), hence the same numbers to the bit, at about the cost of two calls
instead of ``k`` (a small model's gradient is ~50 numpy calls on rows of a few dozen).

It also gives the gradient at *corrected* modes (:func:`newton_corrected_rows`): at
fixed ``beta`` the levels of one scalar term share no rows, so the Hessian of ``PD / 2``
in ``u`` is diagonal,

.. math:: H_{jj} = 1 + \lambda^2 \sum_{i \in j} w_i z_i^2, \qquad
          e_j = -\Bigl(u_j + \lambda \sum_{i \in j} z_i g_i\Bigr) / H_{jj},

(``g``, ``w`` the first and second derivatives of ``d_i / 2`` in ``eta``, the observed
weights), and ``e`` is the Newton step PIRLS takes from those modes (its factor of ``H``
with the same weights: canonical links, or Newton's observed weights, which the
predicted differences require; :meth:`~.pirls.PIRLS.sensitivity_is_exact`). When the
step and the change of ``eta`` it makes are both below PIRLS's tolerance, PIRLS started
at the predicted modes evaluates that step's point and stops there: the corrected modes
are its solution (to rounding), without its factorizations, value and sensitivity.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["newton_corrected_rows", "predicted_gradients"]


def applies(grad) -> bool:
    """Whether :func:`predicted_gradients` applies to the gradient ``grad``: the one
    scalar term of :meth:`~.glmm_gradient.LaplaceGradient._scalar_pieces`, modes the
    PIRLS can predict (:attr:`~.glmm_gradient.LaplaceGradient.predicts_modes`) and no
    estimated negative binomial shape."""
    return getattr(grad, "_scalar", None) is not None and grad.predicts_modes and \
        not grad.obj.estimate_shape


def newton_corrected_rows(grad, x: np.ndarray, rows):
    """``(u, eta, mu)`` one Newton step (module docstring) from the predicted rows
    ``rows = (u, eta, mu)`` at ``x``, or None when that step or its change of ``eta`` is
    not below PIRLS's tolerance (PIRLS would iterate on: solve there) or its point is
    outside the family's range.

    The step is accepted as PIRLS accepts a trial point: its change of the penalized
    deviance is ``O(|H| |e|^2)``, ~1e-20 at ``|e| < tol = 1e-10``, far inside PIRLS's
    rounding allowance (``1e-12 |PD|``), so PIRLS takes it without halving."""
    obj = grad.obj
    pirls = obj.pirls
    theta, beta, _, fam = obj.split(x)
    u, eta, mu = rows
    codes, zc = grad._scalar
    nlev = grad.structure.q
    lams = pirls.lambdas(theta)
    a = lams[0][0, 0] * zc
    with np.errstate(all="raise", under="ignore"):
        try:
            g, w = grad._derivatives(fam, eta, mu)[:2]
            h = 1.0 + np.bincount(codes, w * a * a, minlength=nlev)
            e = -(u + np.bincount(codes, a * g, minlength=nlev)) / h
        except FloatingPointError:
            return None
    tol = pirls.tol
    if not np.isfinite(e).all() or not float(np.abs(e).max(initial=0.0)) < tol:
        return None
    u_new = u + e
    cur = pirls._evaluate(lams, beta, u_new, False)
    if not cur.valid or not math.isfinite(cur.dev) or \
            not float(np.abs(cur.eta - eta).max(initial=0.0)) < tol:
        return None
    return u_new, cur.eta, cur.mu


def predicted_gradients(grad, points: list[np.ndarray], rows: list) -> list:
    """``dF/dx`` at each of ``points`` with the modes and rows ``rows[j] = (u, eta,
    mu)`` (predicted, :meth:`~.pirls.PIRLS.predicted_rows`, or corrected,
    :func:`newton_corrected_rows`), all in one pass (module docstring): the numbers of
    :meth:`~.glmm_gradient.LaplaceGradient._gradient` point by point. A point whose
    gradient is not finite gets None; all of them get None when a floating-point error
    is raised (the caller then goes point by point, where each failure is its own)."""
    obj = grad.obj
    S = grad.structure
    k = len(points)
    if not k:
        return []
    codes, zc = grad._scalar
    nlev = S.q
    splits = [obj.split(x) for x in points]
    fam = splits[0][3]
    obj._use_family(fam)
    U = np.stack([r[0] for r in rows])
    eta = np.stack([r[1] for r in rows])
    mu = np.stack([r[2] for r in rows])
    lam = np.array([S.lambdas(s[0])[0][0, 0] for s in splits])
    # each point's levels offset by nlev: one bincount sums every block in its own order
    blocks = (codes[None, :] + nlev * np.arange(k)[:, None]).ravel()

    def level_sums(v: np.ndarray) -> np.ndarray:
        return np.bincount(blocks, v.ravel(), minlength=k * nlev).reshape(k, nlev)

    X = grad.design.X
    t = S.terms[0].term
    sl = grad.slices[0]
    beta_sl = obj.layout.slice("beta.cond")
    out = np.zeros((k, points[0].size))
    try:
        with np.errstate(all="raise", under="ignore"):
            g, w, wl, dwl, same = grad._derivatives(fam, eta, mu)
            # _scalar_pieces, row by row
            a = lam[:, None] * zc
            a2 = a * a
            d = 1.0 + level_sums(wl * a2)
            dc = np.take(d, codes, axis=1)
            Ba = a / dc
            lev = a2 / dc
            r = dwl * lev
            dh = d if same else 1.0 + level_sums(w * a2)
            hu = level_sums(a * r) / dh
            d_eta = a * np.take(hu, codes, axis=1)
            # _gradient (phi = 1) and _scalar_theta
            gamma = 2.0 * g + r - w * d_eta
            for j in range(k):
                out[j, beta_sl] = X.T @ gamma[j]
            if t.structure.n_theta:
                V = gamma * np.take(U, codes, axis=1)
                V -= g * np.take(hu, codes, axis=1)
                V += 2.0 * wl * Ba
                for j in range(k):
                    jac = grad._jacobian(0, t.structure, splits[j][0][sl])
                    out[j, sl] = jac @ np.array([zc @ V[j]])
    except FloatingPointError:
        return [None] * k
    obj.n_evals += k
    grad.n_grads += k
    return [gj if np.isfinite(gj).all() else None for gj in out]
