r"""Moment starting values of theta for large linear mixed models.

lme4 starts every relative covariance at the identity (theta = 1, correlations 0). On a
large model each evaluation costs a factorization of the whole system, and a start far
from the optimum costs a dozen of them (crossed_slopes_200k: 17 of its 26 evaluations
were spent finding the basin of its ``(x | g3)`` term). A method-of-moments estimate
costs a few passes over the rows instead.

Let ``r = y - offset - X beta_OLS`` and, for term ``k`` with model matrix rows ``z_i``
(p columns) and level ``l``, the per-level least-squares coefficients

.. math:: b_l = (Z_l' Z_l)^{-1} Z_l' r_l .

Ignoring the other terms (their effects average out over a level's rows in crossed
designs), ``E[b_l b_l'] = \Sigma_k + \sigma^2 (Z_l' Z_l)^{-1}``, so with
``B_k = mean_l b_l b_l'`` and ``H_k = mean_l (Z_l'Z_l)^{-1}``,
``\Sigma_k = B_k - \sigma^2 H_k``. The mean square residual adds the terms up:

.. math:: T = mean_i r_i^2 = \sum_k tr(\Sigma_k M_k) + \sigma^2, \quad
          M_k = Z_k' Z_k / n,

which solves for ``\sigma^2 = (T - \sum_k tr(B_k M_k)) / (1 - \sum_k tr(H_k M_k))``.
theta is the Cholesky factor of ``\Sigma_k / \sigma^2`` (eigenvalues floored at
:data:`MOMENT_START_FLOOR` squared, so that the log-scale search can move every
parameter). The caller keeps lme4's start where it is better
(:func:`mixedmodels.fitting.lmm.optimize_lmm`): the estimate only picks where the search
begins, never the optimum.
"""

from __future__ import annotations

import numpy as np

from ..covariance.diagonal import Diagonal
from ..covariance.unstructured import Unstructured

__all__ = ["MOMENT_START_FLOOR", "moment_theta"]

#: Smallest relative standard deviation a moment start gives (a variance estimated at or
#: below zero starts here: inside the log-scale phase's range, close to the bound).
MOMENT_START_FLOOR = 0.05
#: Levels whose ``Z_l'Z_l`` has a reciprocal condition number below this carry no
#: estimate of their coefficients and are left out of the moments.
LEVEL_RCOND = 1e-8
#: The share of the residual mean square left to sigma^2 after the terms' sampling parts
#: must exceed this; otherwise the moments cannot separate sigma from the terms.
MIN_SIGMA_SHARE = 0.05


def _level_moments(codes: np.ndarray, nlevels: int, Z: np.ndarray, r: np.ndarray):
    """``(B, H, M)`` of one term (see the module docstring), or None without any level
    whose coefficients are estimable."""
    n, p = Z.shape
    codes = codes.astype(np.intp, copy=False)  # bincount would convert on every call
    if p == 1:
        # a scalar term: the per-level solves are divisions (no batched LAPACK calls
        # over tens of thousands of 1 x 1 matrices)
        z = Z[:, 0]
        zz = np.bincount(codes, z * z, nlevels)
        ok = zz > 0
        if not ok.any():
            return None
        bl = np.bincount(codes, z * r, nlevels)[ok] / zz[ok]
        h = 1.0 / zz[ok]
        return (np.array([[bl @ bl / bl.size]]), np.array([[h.mean()]]), np.array([[zz.sum() / n]]))
    iu = np.triu_indices(p)
    ZZ = np.zeros((nlevels, p, p))
    for a, b in zip(*iu, strict=True):
        ZZ[:, a, b] = ZZ[:, b, a] = np.bincount(codes, Z[:, a] * Z[:, b], nlevels)
    Zr = np.stack([np.bincount(codes, Z[:, a] * r, nlevels) for a in range(p)], axis=1)
    w = np.linalg.eigvalsh(ZZ)
    ok = w[:, 0] > LEVEL_RCOND * np.maximum(w[:, -1], np.finfo(float).tiny)
    if not ok.any():
        return None
    Hl = np.linalg.inv(ZZ[ok])
    bl = np.einsum("lab,lb->la", Hl, Zr[ok])
    B = bl.T @ bl / bl.shape[0]
    return B, Hl.mean(axis=0), ZZ.sum(axis=0) / n


def _relative_factor(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the symmetric ``S`` with eigenvalues floored."""
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    w = np.maximum(w, MOMENT_START_FLOOR**2)
    return np.linalg.cholesky((V * w) @ V.T)


def moment_theta(design) -> np.ndarray | None:
    """Moment estimate of theta (see the module docstring), in the design's theta order.

    Parameters
    ----------
    design : Design

    Returns
    -------
    ndarray or None
        None where the estimate does not apply (prior weights; terms other than
        unstructured or per-column diagonal ones) or the moments do not determine sigma.
    """
    terms = design.terms
    if design.weights is not None or not terms:
        return None
    for t in terms:
        s = t.structure
        if not (type(s) is Unstructured or (type(s) is Diagonal and s.n_theta == t.Z.shape[1])):
            return None
    X = design.X
    y = np.asarray(design.y, float) - np.asarray(design.offset, float)
    # least squares through the normal equations: p is small and a start needs no more
    # accuracy (lstsq's SVD of the n x p matrix costs ~10x more at a million rows)
    beta = np.linalg.lstsq(X.T @ X, X.T @ y, rcond=None)[0] if X.shape[1] else np.zeros(0)
    r = y - X @ beta
    moments = [
        _level_moments(t.grouping.codes, t.grouping.nlevels, np.asarray(t.Z, float), r)
        for t in terms
    ]
    if any(m is None for m in moments):
        return None
    T = float(r @ r) / r.size
    explained = sum(float(np.sum(B * M)) for B, _, M in moments)
    sampling = sum(float(np.sum(H * M)) for _, H, M in moments)
    if not 1.0 - sampling > MIN_SIGMA_SHARE:
        return None
    sigma2 = (T - explained) / (1.0 - sampling)
    if not (np.isfinite(sigma2) and sigma2 > MIN_SIGMA_SHARE * T):
        return None
    parts = []
    for t, (B, H, _) in zip(terms, moments, strict=True):
        L = _relative_factor((B - sigma2 * H) / sigma2)
        if type(t.structure) is Diagonal:
            parts.append(np.sqrt(np.diag(L @ L.T)))
        else:
            # lme4's order: the lower triangle column by column
            rows, cols = t.structure.rows, t.structure.cols
            parts.append(L[rows, cols])
    return np.concatenate(parts)
