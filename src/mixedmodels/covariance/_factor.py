r"""Cholesky factors of small correlation matrices and their derivatives.

For ``R = L L'`` and a perturbation ``dR`` the derivative of the lower Cholesky factor is

.. math:: dL = L\, \Phi(L^{-1}\, dR\, L^{-T}),

with ``Phi`` keeping the strict lower triangle and half the diagonal (Murray 2016,
"Differentiation of the Cholesky decomposition"). The structures of this package use it
for the exact ``dLambda/dtheta`` of every correlation structure.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

__all__ = ["chol_derivatives", "chol_relative_derivatives", "psd_factor", "triangular_inverse"]

#: Eigenvalues of a known matrix below this times its largest are taken as zero.
PSD_RTOL = 1e-10


def chol_derivatives(L: np.ndarray, dR: np.ndarray) -> np.ndarray:
    """``dL`` for each ``dR[j]`` (k, p, p) given the lower factor ``L`` of ``R``."""
    if not dR.shape[0]:
        return np.zeros_like(dR)
    return np.matmul(L, chol_relative_derivatives(triangular_inverse(L), dR))


def triangular_inverse(L: np.ndarray) -> np.ndarray:
    """``L^{-1}`` of a lower-triangular ``L`` (LAPACK's triangular inverse directly:
    scipy's solve_triangular validates its arguments at several times the cost of the
    work for the p <= 10 of these terms)."""
    Linv, info = lapack.dtrtri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular Cholesky factor of a correlation matrix")
    return np.tril(Linv)


def chol_relative_derivatives(Linv: np.ndarray, dR: np.ndarray) -> np.ndarray:
    """``L^{-1} dL = Phi(L^{-1} dR_j L^{-T})`` for each ``dR[j]`` (k, p, p), given
    ``L^{-1}``: the derivative of the factor relative to the factor itself."""
    X = np.matmul(np.matmul(Linv, dR), Linv.T)          # L^{-1} dR_j L^{-T}
    X = np.tril(X)
    idx = np.arange(Linv.shape[0])
    X[:, idx, idx] *= 0.5
    return X


def psd_factor(K: np.ndarray) -> np.ndarray:
    """A factor ``C`` with ``C C' = K`` for a symmetric positive *semi*-definite ``K``:
    the Cholesky factor when ``K`` is definite, else ``V diag(sqrt(d))`` from its
    eigendecomposition (a genomic relationship matrix is often singular)."""
    try:
        return np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        d, V = np.linalg.eigh(K)
        d = np.where(d > PSD_RTOL * max(float(d.max()), 0.0), d, 0.0)
        return V * np.sqrt(d)[None, :]
