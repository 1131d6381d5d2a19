r"""Adaptive Gauss-Hermite quadrature for a GLMM with one scalar random-effects term.

With a single scalar term the integral over the random effects factors into one
one-dimensional integral per level ``j``. With ``g_j(u) = -2 \sum_{i \in j} \log
p(y_i \mid u) + u^2 / \phi`` (``phi = 1`` without a dispersion parameter), the conditional
mode ``u_j`` from PIRLS and the curvature ``L_jj^2`` (the level's diagonal of the blocked
Cholesky factor; ``phi / L_jj^2`` is the conditional variance), the substitution
``u = u_j + z \sqrt{\phi} / L_jj`` and the Gauss-Hermite rule ``(z_k, w_k)`` for the weight
``exp(-z^2/2)/\sqrt{2\pi}`` give

.. math::

    -2 \log L_j \approx g_j(u_j) + \log L_{jj}^2
        - 2 \log \sum_k w_k \exp\!\left(\frac{z_k^2}{2}
              - \frac{g_j(u_j + z_k \sqrt{\phi}/L_{jj}) - g_j(u_j)}{2}\right).

With one node (``z = 0``, ``w = 1``) this is the Laplace approximation, so the
log-likelihood is on the same scale for every number of nodes; ``g_j`` uses the full
``-2 log p`` (lme4 drops the saturated part for nAGQ > 1).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["MAX_NAGQ", "agq_deviance", "agq_from_sums", "agq_level_sums",
           "agq_node_predictors", "agq_sums_of", "gauss_hermite"]

#: Most quadrature nodes accepted (lme4's limit for useful accuracy).
MAX_NAGQ = 25


@cache
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point rule for the standard normal density."""
    z, w = hermegauss(n)
    return z, w / np.sqrt(2.0 * np.pi)


@cache
def _node_terms(n: int) -> np.ndarray:
    """``log w_k + z_k^2 / 2`` of the ``n``-point rule, a column (the part of every
    level's log-sum-exp that does not depend on the data)."""
    z, w = gauss_hermite(n)
    return (np.log(w) + 0.5 * (z * z))[:, None]


def agq_deviance(nodes: int, *, eta: np.ndarray, u: np.ndarray, codes: np.ndarray,
                 zcol: np.ndarray, lam: float, L_diag: np.ndarray, m2ll, phi: float = 1.0
                 ) -> float:
    """``-2 log L`` by adaptive Gauss-Hermite quadrature (see the module docstring).

    Parameters
    ----------
    nodes : int
        Number of quadrature nodes per level.
    eta : ndarray (n,)
        Linear predictor at the conditional modes.
    u : ndarray (levels,)
        Conditional modes (``b = lam * u``).
    codes : ndarray (n,)
        Level of each observation.
    zcol : ndarray (n,)
        The term's model-matrix column.
    lam : float
        The term's relative standard deviation (its Lambda).
    L_diag : ndarray (levels,)
        Diagonal of the Cholesky factor at the modes.
    m2ll : callable
        ``eta -> -2 log p(y_i | eta_i)`` for an array of linear predictors whose last axis
        runs over the observations (at the current phi; inf outside the family's range).
    phi : float
        Dispersion (1 for binomial / Poisson).
    """
    scale = np.sqrt(phi) / L_diag
    sums = agq_level_sums(nodes, eta=eta, codes=codes, zcol=zcol, lam=lam, scale=scale,
                          m2ll=m2ll, nlevels=u.shape[0])
    return agq_from_sums(nodes, sums, u=u, L_diag=L_diag, phi=phi)


def agq_level_sums(nodes: int, *, eta: np.ndarray, codes: np.ndarray, zcol: np.ndarray,
                   lam: float, scale: np.ndarray, m2ll, nlevels: int) -> np.ndarray:
    """Per level, ``sum_{i in j} -2 log p(y_i | eta_i + z_k lam zcol_i scale_j)`` at the
    mode (row 0) and at every node ``z_k`` (rows 1..nodes): the only part of
    :func:`agq_deviance` that reads the rows, so sums over chunks of rows add up.

    Parameters
    ----------
    nodes : int
    eta, codes, zcol : ndarray (n,)
    lam : float
    scale : ndarray (levels,)
        ``sqrt(phi) / L_jj``.
    m2ll : callable
    nlevels : int

    Returns
    -------
    ndarray (nodes + 1, levels)
    """
    etas = agq_node_predictors(nodes, eta=eta, codes=codes, zcol=zcol, lam=lam, scale=scale)
    return agq_sums_of(m2ll(etas), codes, nlevels)


def agq_node_predictors(nodes: int, *, eta: np.ndarray, codes: np.ndarray,
                        zcol: np.ndarray, lam: float, scale: np.ndarray) -> np.ndarray:
    """The linear predictors of :func:`agq_level_sums`, (nodes + 1, n): the mode's (row
    0), then ``eta_i + z_k lam zcol_i scale_j`` at every node."""
    z, _ = gauss_hermite(int(nodes))
    # all nodes at once: (nodes, n) linear predictors; node 0 of an odd rule is the mode
    shift_obs = lam * zcol * scale[codes]
    etas = np.empty((z.size + 1, eta.shape[0]))
    etas[0] = eta
    np.multiply(z[:, None], shift_obs[None, :], out=etas[1:])
    etas[1:] += eta
    return etas


def agq_sums_of(per_obs: np.ndarray, codes: np.ndarray, nlevels: int) -> np.ndarray:
    """Per-level sums of each row of ``per_obs`` (rows x n) -> (rows, levels)."""
    rows = per_obs.shape[0]
    flat_codes = (np.arange(rows)[:, None] * nlevels + codes[None, :]).ravel()
    sums = np.bincount(flat_codes, per_obs.ravel(), minlength=rows * nlevels)
    return sums.reshape(rows, nlevels)


def agq_from_sums(nodes: int, sums: np.ndarray, *, u: np.ndarray, L_diag: np.ndarray,
                  phi: float = 1.0) -> float:
    """:func:`agq_deviance` from the per-level sums of :func:`agq_level_sums`."""
    z, _ = gauss_hermite(int(nodes))
    scale = np.sqrt(phi) / L_diag
    uk = u[None, :] + z[:, None] * scale[None, :]
    u2, uk2 = u * u, uk * uk
    if phi != 1.0:
        u2 /= phi
        uk2 /= phi
    g0 = sums[0] + u2
    gk = sums[1:] + uk2
    terms = _node_terms(int(nodes)) - 0.5 * (gk - g0[None, :])
    top = terms.max(axis=0)
    log_sum = top + np.log(np.exp(terms - top).sum(axis=0))
    return float(g0.sum() + 2.0 * np.log(L_diag).sum() - 2.0 * log_sum.sum())
