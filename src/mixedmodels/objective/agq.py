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

__all__ = ["MAX_NAGQ", "agq_deviance", "gauss_hermite"]

#: Most quadrature nodes accepted (lme4's limit for useful accuracy).
MAX_NAGQ = 25


@cache
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point rule for the standard normal density."""
    z, w = hermegauss(n)
    return z, w / np.sqrt(2.0 * np.pi)


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
        Conditional modes (spherical scale: ``b = lam * u``).
    codes : ndarray (n,)
        Level of each observation.
    zcol : ndarray (n,)
        The term's model-matrix column.
    lam : float
        The term's relative standard deviation (its Lambda).
    L_diag : ndarray (levels,)
        Diagonal of the Cholesky factor at the modes.
    m2ll : callable
        ``eta -> -2 log p(y_i | eta_i)`` per observation (at the current phi).
    phi : float
        Dispersion (1 for binomial / Poisson).
    """
    nlev = u.shape[0]
    z, w = gauss_hermite(int(nodes))
    g0 = np.bincount(codes, m2ll(eta), minlength=nlev) + u * u / phi
    scale = np.sqrt(phi) / L_diag
    # terms of the sum over nodes, (nodes, levels); node 0 of an odd rule is the mode
    terms = np.empty((z.size, nlev))
    shift_obs = lam * zcol * scale[codes]
    for k, zk in enumerate(z):    # loop over <= 25 nodes, vectorized over observations
        if zk == 0.0:
            terms[k] = np.log(w[k])
            continue
        uk = u + zk * scale
        gk = np.bincount(codes, m2ll(eta + zk * shift_obs), minlength=nlev) + uk * uk / phi
        terms[k] = np.log(w[k]) + 0.5 * zk * zk - 0.5 * (gk - g0)
    top = terms.max(axis=0)
    log_sum = top + np.log(np.exp(terms - top).sum(axis=0))
    return float(np.sum(g0) + 2.0 * np.sum(np.log(L_diag)) - 2.0 * np.sum(log_sum))
