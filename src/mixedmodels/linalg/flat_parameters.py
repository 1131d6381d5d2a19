r"""Wald covariances when some parameters are flat at the estimates.

At a boundary of the parameter space -- a standard deviation run to 0, a spatial range
below the smallest distance, a variance constant at 0 -- or where two parameters trade off
exactly (a range run to 0 makes a spatial effect an independent one, confounded with the
residual variance), the Hessian ``H`` of the deviance is singular or indefinite and its
inverse says nothing. nlme then refuses intervals; glmmTMB's ``sdreport`` inverts ``H``
anyway (negative variances, 1e8 entries).

:func:`conditional_covariance` drops the flat coordinates and inverts the rest: the
covariance of the remaining parameters with the dropped ones held at their estimates (the
sub-matrix of ``H`` is exactly the Hessian of that conditional problem, so nothing new has
to be differentiated). Coordinates go, one at a time, while the remaining Hessian is not
finite (the one with the most non-finite entries: a step off a boundary left the
criterion's domain) or not positive definite (the one that weighs most in the eigenvector
of the smallest eigenvalue: the flat direction). Where ``H`` is positive definite nothing
is dropped and the answer is ``H^{-1}``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conditional_covariance", "flat_coordinates"]


def flat_coordinates(H: np.ndarray) -> np.ndarray:
    """Which coordinates to hold so that the rest of ``H`` is positive definite.

    Parameters
    ----------
    H : ndarray (k, k)
        Hessian of a criterion to be minimized (deviance or minus log-likelihood).

    Returns
    -------
    ndarray of bool (k,)
        True for the coordinates held (see the module docstring).
    """
    H = np.asarray(H, dtype=float)
    alive = np.ones(H.shape[0], dtype=bool)
    while alive.any():
        sub = H[np.ix_(alive, alive)]
        bad = ~np.isfinite(sub)
        if bad.any():
            alive[np.flatnonzero(alive)[np.argmax(bad.sum(axis=0))]] = False
            continue
        vals, vecs = np.linalg.eigh(0.5 * (sub + sub.T))
        if vals[0] > 0.0:
            break
        alive[np.flatnonzero(alive)[np.argmax(np.abs(vecs[:, 0]))]] = False
    return ~alive


def conditional_covariance(H: np.ndarray, scale: float = 1.0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """``scale * H^{-1}`` over the coordinates that are not flat, NaN on the flat ones.

    Parameters
    ----------
    H : ndarray (k, k)
    scale : float
        2 for a deviance's Hessian (covariance ``2 H^{-1}``), 1 for minus a
        log-likelihood's.

    Returns
    -------
    V : ndarray (k, k)
        The conditional covariance (rows and columns of flat coordinates NaN).
    flat : ndarray of bool (k,)
    """
    H = np.asarray(H, dtype=float)
    flat = flat_coordinates(H)
    keep = ~flat
    V = np.full(H.shape, np.nan)
    if keep.any():
        sub = H[np.ix_(keep, keep)]
        Vk = scale * np.linalg.inv(0.5 * (sub + sub.T))
        V[np.ix_(keep, keep)] = 0.5 * (Vk + Vk.T)
    return V, flat
