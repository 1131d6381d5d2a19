r"""Analytic gradient of the profiled LMM objective for scalar random-effects terms.

For terms with one random effect each (random intercepts, ``(0 + x | g)``), ``Lambda`` is
diagonal with ``theta_k`` on the columns of term k, and with ``M = Lambda A Lambda + I``
(``A = Z'WZ``), ``C = R_X' R_X`` and ``r^2`` the penalized residual sum of squares:

.. math::

    \frac{\partial \log|M|}{\partial\theta_k} &= \frac{2\,(q_k - t_k)}{\theta_k},
        \qquad t_k = \sum_{i \in k} (M^{-1})_{ii}
        \quad (0 \text{ at } \theta_k = 0) \\
    \frac{\partial r^2}{\partial\theta_k} &= -2 \sum_{i \in k} u_i\,(Z'We)_i
        \qquad (e = y - X\beta - Z\Lambda u, \text{ envelope theorem}) \\
    \frac{\partial \log|C|}{\partial\theta_k} &= -2\theta_k\,
        \operatorname{tr}\!\big(C^{-1} F_k' F_k\big),
        \qquad F = Z'\Sigma^{-1}X = A_{ZX} - A\Lambda M^{-1}\Lambda A_{ZX}

The first identity uses ``Lambda A E_k = (M - I) E_k / theta_k``. The diagonal of ``M^{-1}``
needs only ``S^{-1}`` of the dense block (``S = L22 L22'``) and the trace
``tr(S^{-1} L21 D^{-2} L21')``, whose matrix is the same sparse product pattern as the
factorization with other weights -- so a gradient costs about two objective evaluations,
and the optimizer needs several times fewer of them than a derivative-free method.
"""

from __future__ import annotations

import numpy as np

from ..linalg.blocked import BlockedFactor, BlockedSystem
from ..linalg.lapack import inverse_crossprod_inplace, solve_lower_t

__all__ = ["scalar_terms_gradient", "supports_gradient"]


def supports_gradient(system: BlockedSystem) -> bool:
    """True when every term is scalar with ``Lambda = theta`` (lme4's unstructured
    structure, or ``diag`` of one effect): the formulas of the module docstring."""
    return all(b.p == 1 for b in system.pattern.blocks) and all(
        s.direct and s.n_theta == 1 for s in system.structures)


def _z_we(system: BlockedSystem, beta: np.ndarray, b1: np.ndarray, br) -> tuple:
    """``Z'W(y - X beta - Z b)`` split into term 1 and the rest block."""
    A = system.A
    p = beta.shape[0]
    g1 = A.A1X[:, 0, p] - A.A1X[:, 0, :p] @ beta - A.A11[:, 0, 0] * b1
    gr = None
    if A.A21 is not None:
        g1 = g1 - A.A21.T @ br
        gr = A.ArX[:, p] - A.ArX[:, :p] @ beta - A.A21 @ b1 - A.A22 @ br
    return g1, gr


def scalar_terms_gradient(system: BlockedSystem, f: BlockedFactor, theta: np.ndarray,
                          beta: np.ndarray, u: np.ndarray, r2: float, dof: float,
                          reml: bool, RX_inv: np.ndarray) -> np.ndarray:
    """Gradient of the objective at ``theta`` (see the module docstring).

    ``dof`` is n (ML) or n - p (REML); ``RX_inv`` is ``R_X^{-1}`` (p x p).
    """
    A = system.A
    blocks = system.pattern.blocks
    l1 = blocks[0].nlevels
    d = f.L11[:, 0, 0]
    k_terms = len(blocks)
    q = np.array([b.q for b in blocks])
    term_of_rest = np.repeat(np.arange(1, k_terms), [b.q for b in blocks[1:]])
    lam_r = f.lam_r
    u1, ur = u[:l1], u[l1:]
    b1 = theta[0] * u1
    br = lam_r * ur if lam_r is not None else None

    # -- diagonal of M^{-1}, summed per term ------------------------------------------------
    t = np.zeros(k_terms)
    t[0] = np.sum(1.0 / d ** 2)
    Sinv = None
    if A.A21 is not None:
        Sinv = f.L22.copy()
        if not inverse_crossprod_inplace(Sinv):
            raise np.linalg.LinAlgError("inverse of the dense block failed")
        diag = np.diagonal(Sinv)
        t[1:] = np.bincount(term_of_rest - 1, diag, minlength=k_terms - 1)
        c = f.m1 ** 2 / d ** 2
        product = system._product
        if product is not None:
            vals = product.values(c) * lam_r[product.rows] * lam_r[product.cols]
            weights = np.where(product.rows == product.cols, 1.0, 2.0)
            t[0] += float(np.sum(Sinv.reshape(-1)[product.flat] * vals * weights))
        else:
            L21 = system.l21(f)
            H = (L21.multiply(1.0 / d[None, :]) @ L21.multiply(1.0 / d[None, :]).T).toarray()
            t[0] += float(np.sum(np.tril(Sinv) * np.tril(H))) * 2.0 - float(
                np.sum(np.diagonal(Sinv) * np.diagonal(H)))
    grad = np.zeros(k_terms)
    pos = theta > 0
    grad[pos] = 2.0 * (q[pos] - t[pos]) / theta[pos]

    # -- penalized residual sum of squares ---------------------------------------------------
    g1, gr = _z_we(system, beta, b1, br)
    dr2 = np.zeros(k_terms)
    dr2[0] = -2.0 * float(u1 @ g1)
    if gr is not None:
        dr2[1:] = -2.0 * np.bincount(term_of_rest - 1, ur * gr, minlength=k_terms - 1)
    grad += dof / r2 * dr2

    # -- REML: log det C ---------------------------------------------------------------------
    p = beta.shape[0]
    if reml and p:
        Y1 = f.L1X[:, 0, :p]
        if A.A21 is not None:
            Vr = solve_lower_t(f.L22, f.LrX[:, :p])
            L21T_Vr = f.m1[:, None] * (A.A21.T @ (lam_r[:, None] * Vr))
            V1 = (Y1 - L21T_Vr) / d[:, None]
        else:
            V1 = Y1 / d[:, None]
        # F = A_ZX - A Lambda V
        W1 = theta[0] * V1
        F1 = A.A1X[:, 0, :p] - A.A11[:, 0, 0][:, None] * W1
        if A.A21 is not None:
            Wr = lam_r[:, None] * Vr
            F1 = F1 - A.A21.T @ Wr
            Fr = A.ArX[:, :p] - A.A21 @ W1 - A.A22 @ Wr
        G1 = F1 @ RX_inv
        ss = np.zeros(k_terms)
        ss[0] = float(np.sum(G1 * G1))
        if A.A21 is not None:
            Gr = Fr @ RX_inv
            ss[1:] = np.bincount(term_of_rest - 1, np.sum(Gr * Gr, axis=1),
                                 minlength=k_terms - 1)
        grad += -2.0 * theta * ss
    return grad
