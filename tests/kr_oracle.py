"""pbkrtest's Kenward-Roger formulas with dense n x n matrices: the oracle of the
Kenward-Roger tests (independent of the package's q-space algebra)."""

from __future__ import annotations

import numpy as np


def dense_z(design) -> np.ndarray:
    """The random-effects model matrix ``Z`` of a design, dense, terms side by side."""
    blocks = []
    for t in design.terms:
        Z = np.zeros((design.nobs, t.q))
        rows = np.arange(design.nobs)
        for j in range(t.p):
            Z[rows, t.grouping.codes * t.p + j] = t.Z[:, j]
        blocks.append(Z)
    return np.hstack(blocks)


def dense_kenward_roger(Sigma: np.ndarray, X: np.ndarray, G: list[np.ndarray]):
    """Kenward-Roger's pieces for ``y ~ N(X beta, Sigma)`` with ``Sigma`` linear in the
    variance parameters, ``G[i] = dSigma / dsigma_i``.

    Returns
    -------
    Phi, PhiA, P, W
        ``(X' Sigma^-1 X)^-1``, the adjusted covariance, the ``P_i`` matrices and the
        inverse expected restricted information ``W`` (pbkrtest's ``vcovAdj``).
    """
    Si = np.linalg.inv(Sigma)
    Phi = np.linalg.inv(X.T @ Si @ X)
    P = [-X.T @ Si @ Gi @ Si @ X for Gi in G]
    Q = [[X.T @ Si @ Gi @ Si @ Gj @ Si @ X for Gj in G] for Gi in G]
    k = len(G)
    info = np.array([[np.trace(Si @ G[i] @ Si @ G[j]) - 2 * np.trace(Phi @ Q[i][j])
                      + np.trace(Phi @ P[i] @ Phi @ P[j]) for j in range(k)] for i in range(k)])
    W = 2 * np.linalg.inv(info)
    U = sum(W[i, j] * (Q[i][j] - P[i] @ Phi @ P[j]) for i in range(k) for j in range(k))
    return Phi, Phi + 2 * Phi @ U @ Phi, P, W
