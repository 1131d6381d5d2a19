r"""The free parameters of a glmmtmb fit on glmmTMB 1.1.5's own scale.

Our optimizer's theta is not glmmTMB's for every structure: plain and ``diag`` terms use
lme4's Cholesky entries (``us``) or standard deviations (``diag``), where glmmTMB uses log
standard deviations and TMB's unstructured-correlation parameters
(:meth:`~mixedmodels.covariance.base.CovarianceStructure.to_glmmtmb`). ``vcov(full = TRUE)``
and ``confint(method = "wald")`` of glmmTMB are on glmmTMB's scale; at the optimum the
inverse Hessian of a reparameterization ``y = g(x)`` is exactly

.. math:: V_y = J V_x J', \qquad J = \partial g / \partial x,

because the gradient (which would add a term to the transformed Hessian) vanishes there.
``J`` is block diagonal: the identity on fixed effects and family parameters, each term's
Jacobian of ``to_glmmtmb`` (central differences) on its theta.
"""

from __future__ import annotations

import numpy as np

__all__ = ["JACOBIAN_STEP", "glmmtmb_point_and_jacobian", "map_jacobian"]

#: Relative step of the central differences of ``to_glmmtmb`` (smooth maps: the error is
#: of order step^2, far below the Hessian's own).
JACOBIAN_STEP = 1e-6


def map_jacobian(fun, theta: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of a smooth map ``fun`` of a term's parameters (square:
    ``to_glmmtmb`` and its inverse keep the count), at ``theta``."""
    k = theta.size
    J = np.empty((k, k))
    for j in range(k):
        h = JACOBIAN_STEP * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        with np.errstate(divide="ignore", invalid="ignore"):
            J[:, j] = (np.asarray(fun(tp)) - np.asarray(fun(tm))) / (2 * h)
    return J


def _term_jacobian(structure, theta: np.ndarray) -> np.ndarray:
    return map_jacobian(structure.to_glmmtmb, theta)


def glmmtmb_point_and_jacobian(m) -> tuple[np.ndarray, np.ndarray]:
    """The full parameter vector on glmmTMB's scale and ``J`` (layout size square).

    Parameters
    ----------
    m : GlmmTMBResult

    Returns
    -------
    y : ndarray
        ``m.x`` with every term's theta replaced by its ``to_glmmtmb``; a zero standard
        deviation gives ``-inf`` (glmmTMB's log scale has no zero).
    J : ndarray
        ``dy/dx``; rows of a parameter whose glmmTMB value is not finite are NaN.
    """
    x = np.asarray(m.x, dtype=float)
    layout = m.layout
    y, J = x.copy(), np.eye(x.size)
    for name, comp in m.design.components.items():
        block = f"theta.{name}"
        if block not in layout or not comp.terms:
            continue
        base = layout.slice(block).start
        for t, s in zip(comp.terms, comp.theta_slices(), strict=True):
            idx = np.arange(base + s.start, base + s.stop)
            th = x[idx]
            with np.errstate(divide="ignore", invalid="ignore"):
                val = np.asarray(t.structure.to_glmmtmb(th), dtype=float)
            if val.shape != th.shape:      # a structure counted differently: keep ours
                continue
            y[idx] = val
            Jt = _term_jacobian(t.structure, th)
            Jt[~np.isfinite(val)] = np.nan
            J[np.ix_(idx, idx)] = Jt
    return y, J
