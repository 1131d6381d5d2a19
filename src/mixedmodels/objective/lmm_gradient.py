r"""Analytic gradient of the profiled LMM objective.

Two implementations on the blocked factor (:mod:`mixedmodels.linalg.blocked`):
:func:`scalar_terms_gradient` for models whose terms are all scalar (below), and
:func:`general_gradient` for any ``Lambda(theta)`` -- vector-valued terms and every
covariance structure with ``lambda_jacobian`` (its docstring has the maths).

Scalar terms: for terms with one random effect each (random intercepts, ``(0 + x | g)``),
``Lambda`` is diagonal with ``theta_k`` on the columns of term k, and with
``M = Lambda A Lambda + I`` (``A = Z'WZ``), ``C = R_X' R_X`` and ``r^2`` the penalized
residual sum of squares:

.. math::

    \frac{\partial \log|M|}{\partial\theta_k} &= \frac{2\,(q_k - t_k)}{\theta_k},
        \qquad t_k = \sum_{i \in k} (M^{-1})_{ii}
        \quad (0 \text{ at } \theta_k = 0) \\
    \frac{\partial r^2}{\partial\theta_k} &= -2 \sum_{i \in k} u_i\,(Z'We)_i
        \qquad (e = y - X\beta - Z\Lambda u, \text{ envelope theorem}) \\
    \frac{\partial \log|C|}{\partial\theta_k} &= -2\theta_k\,
        \operatorname{tr}\!\big(C^{-1} F_k' F_k\big),
        \qquad F = Z'\Sigma^{-1}X = A_{ZX} - A\Lambda M^{-1}\Lambda A_{ZX}

The first identity uses ``Lambda A E_k = (M - I) E_k / theta_k``; the other two reduce to
sums of squares of the rows of ``V = M^{-1}\Lambda' Z'W[X y]`` (:func:`scalar_terms_gradient`).
The diagonal of ``M^{-1}`` needs only ``S^{-1}`` of the dense block (``S = L22 L22'``) and
the trace ``tr(S^{-1} L21 D^{-2} L21')``, whose matrix is the same sparse product pattern as
the factorization with other weights, and the optimizer needs several times fewer gradient
evaluations than a derivative-free method needs values.

Cost: ``S^{-1}`` from the factor (``dtrtri`` + ``dlauum``) is two Cholesky factorizations'
worth of flops, so on a large dense block a value and gradient costs about three values
(InstEval, 1,142 columns: Cholesky 11 ms, inverse 25 ms, one CPU). The pattern of
``L21 D^{-2} L21'`` is dense on crossed designs (every position of the 2,000-column block of
``crossed_1m``), so no selected inversion on it is cheaper than the full inverse; a
directional (forward-mode) derivative of the Cholesky factor along that matrix costs as much.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..covariance.base import CovarianceStructure
from ..linalg.blocked import BlockedFactor, BlockedSystem
from ..linalg.lapack import inverse_crossprod_inplace, mirror_lower_inplace, solve_lower_t

__all__ = ["fisher_curvature", "general_gradient", "has_jacobian", "scalar_terms_gradient",
           "shrinkage_curvature", "supports_gradient"]


def supports_gradient(system: BlockedSystem) -> bool:
    """True when every term is scalar with ``Lambda = theta`` (the scalar fast path)."""
    return all(b.p == 1 for b in system.pattern.blocks) and all(
        s.direct_map() is not None and s.n_theta == 1 for s in system.structures)


def has_jacobian(structures) -> bool:
    """True when every structure gives ``d Lambda / d theta`` (:func:`general_gradient`)."""
    for s in structures:
        if (type(s).lambda_jacobian is CovarianceStructure.lambda_jacobian
                and s.direct_map() is not None):
            # the base class's Jacobian of a structure whose entries are parameters:
            # always defined (asked by every small fit's objective; forming it costs more)
            continue
        try:
            s.lambda_jacobian(s.theta0())
        except NotImplementedError:
            return False
    return True


def scalar_terms_gradient(system: BlockedSystem, f: BlockedFactor, theta: np.ndarray,
                          beta: np.ndarray, r2: float, dof: float, reml: bool,
                          RX_inv: np.ndarray, consume: bool = False,
                          curvature: np.ndarray | None = None) -> np.ndarray:
    r"""Gradient of the objective at ``theta`` (see the module docstring).

    ``dof`` is n (ML) or n - p (REML); ``RX_inv`` is ``R_X^{-1}`` (p x p). ``consume=True``
    lets the gradient overwrite the factor's dense block with ``S^{-1}`` (for a factor
    that is discarded afterwards: no copy of the largest array of the fit).
    ``curvature`` (one entry per term), when given, receives
    :func:`shrinkage_curvature`'s estimate of the Hessian's diagonal in ``log theta``.

    The parts other than ``log|M|`` need no cross-product: with ``V = M^{-1}\Lambda' Z'W[X
    y]`` (one back-substitution, every column at once), ``u = V w`` (``w = (-beta, 1)``)
    and the normal equations ``\Lambda' Z'W(y - X\beta - Z\Lambda u) = u``, ``F_i =
    V_i / \theta_k`` for every row i of a scalar term k with ``theta_k > 0``, so

    .. math::

        \frac{\partial r^2}{\partial\theta_k} = -\frac{2}{\theta_k}\sum_{i\in k} u_i^2,
        \qquad
        \frac{\partial \log|C|}{\partial\theta_k} = -\frac{2}{\theta_k}\sum_{i\in k}
            \|V_i R_X^{-1}\|^2

    (both 0 at ``theta_k = 0``, where the term's rows of ``V`` vanish).
    """
    A = system.A
    blocks = system.pattern.blocks
    d = f.L11[:, 0, 0]
    k_terms = len(blocks)
    p = beta.shape[0]
    q = np.array([b.q for b in blocks])
    w_beta = np.concatenate([-beta, [1.0]])
    # -- V = M^{-1} Lambda' Z'W [X y] (before the dense block becomes S^{-1}) ------------
    if A.A21 is not None:
        Vr = solve_lower_t(f.L22, f.LrX)                        # (q_r, m)
        lam_r = f.lam_r
        # L21' Vr = m1 (A21' Lambda_r Vr): no sparse L21 to build
        V1 = (f.L1X[:, 0, :] - f.m1[:, None] * (system.a21_t @ (lam_r[:, None] * Vr))
              ) / d[:, None]
    else:
        Vr = None
        V1 = f.L1X[:, 0, :] / d[:, None]
    # per term: sum of u_i^2 and (REML) of ||V_i R_X^{-1}||^2 over its rows
    sq = np.zeros(k_terms)
    u1 = V1 @ w_beta
    sq[0] = float(u1 @ u1)
    if reml and p:
        G1 = V1[:, :p] @ RX_inv
        sq[0] += float(np.sum(G1 * G1)) / (dof / r2)
    # -- diagonal of M^{-1}, summed per term ------------------------------------------------
    t = np.zeros(k_terms)
    t[0] = np.sum(1.0 / d ** 2)
    if Vr is not None:
        ur = Vr @ w_beta
        ssr = ur * ur
        if reml and p:
            Gr = Vr[:, :p] @ RX_inv
            ssr += np.sum(Gr * Gr, axis=1) / (dof / r2)
        term_of_rest = system.rest_term_of_row
        sq[1:] = np.bincount(term_of_rest, ssr, minlength=k_terms - 1)
        Sinv = _dense_inverse(f.L22, consume)
        t[1:] = np.bincount(term_of_rest, np.diagonal(Sinv), minlength=k_terms - 1)
        t[0] += _first_term_trace(system, f, Sinv, d)
    if curvature is not None:
        curvature[:] = shrinkage_curvature(d, None if Vr is None else np.diagonal(Sinv),
                                           system.rest_term_of_row if Vr is not None
                                           else None, k_terms)
    grad = np.zeros(k_terms)
    pos = theta > 0
    # log|M| and, through V, r^2 (scaled by dof / r^2) and log|C|
    grad[pos] = 2.0 * (q[pos] - t[pos] - dof / r2 * sq[pos]) / theta[pos]
    return grad


def shrinkage_curvature(d: np.ndarray, rest_diag: np.ndarray | None,
                        term_of_rest: np.ndarray | None, k_terms: int) -> np.ndarray:
    r"""Diagonal estimate of the criterion's Hessian in ``log theta`` (scalar terms):
    ``H_kk ~ 4 sum_{i in k} r_i^2`` with ``r_i = 1 - (M^{-1})_{ii}`` the shrinkage of
    random effect i.

    For one grouping factor with independent levels, ``r_i = theta^2 a_i / (1 + theta^2
    a_i)`` and the expected information of ``psi = log sigma_b^2`` in the log-likelihood
    is ``sum r_i^2 / 2``: the deviance doubles it and ``log theta = psi / 2`` multiplies it
    by four. The rest terms' ``(M^{-1})_{ii} = (S^{-1})_{ii}`` are exact (crossed and
    confounded terms included); the first term's use the level's own block,
    ``1 / d_i^2`` (``d`` the diagonal of ``L11``), leaving out the crossed correction the
    gradient gets from the trace. On InstEval at the moment start: 4838 / 3212 / 28.8
    (``s`` / ``d`` / ``dept``) against the Hessian's 4473 / 3160 / 22.8 (finite
    differences of this gradient); the per-level counts alone give 53 for ``dept``, whose
    levels are confounded with those of ``d``.

    Parameters
    ----------
    d : ndarray (l1,)
        Diagonal of ``L11``.
    rest_diag : ndarray (q_r,) or None
        Diagonal of ``S^{-1}`` (None without rest terms).
    term_of_rest : ndarray (q_r,) or None
        Rest term (0 for the second term) of each rest column.
    k_terms : int
    """
    out = np.zeros(k_terms)
    r1 = 1.0 - 1.0 / (d * d)
    out[0] = 4.0 * float(r1 @ r1)
    if rest_diag is not None:
        r = 1.0 - rest_diag
        out[1:] = 4.0 * np.bincount(term_of_rest, r * r, minlength=k_terms - 1)
    return out


def _first_term_trace(system: BlockedSystem, f: BlockedFactor, Sinv: np.ndarray,
                      d: np.ndarray) -> float:
    r"""``tr(S^{-1} L21 D^{-2} L21')``: the first term's share of ``tr(M^{-1})`` beyond
    ``sum 1/d^2``, from ``S^{-1}`` at the product pattern's positions (lower triangle).

    ``L21 D^{-2} L21' = \Lambda_r A21 diag(c) A21' \Lambda_r`` with ``c = m_1^2 / d^2``;
    ``\Lambda_r`` is constant on each rest term, so the products at the positions are
    summed per pair of terms (and diagonal or not) in one pass
    (:attr:`BlockedSystem.rest_pair_classes`) and scaled by ``lambda_k lambda_l`` (times 2
    off the diagonal) afterwards -- no per-position scaling arrays.
    """
    c = f.m1 ** 2 / d ** 2
    product = system._product
    if product is not None:
        prod = Sinv.reshape(-1)[product.flat]
        prod *= product.values(c)
        coef = _pair_coefficients(_term_scales(f.lam_rest))
        sums = np.bincount(system.rest_pair_classes, prod, minlength=coef.shape[0])
        return float(sums @ coef)
    L21 = system.l21(f)
    H = (L21.multiply(1.0 / d[None, :]) @ L21.multiply(1.0 / d[None, :]).T).toarray()
    return float(np.sum(np.tril(Sinv) * np.tril(H))) * 2.0 - float(
        np.sum(np.diagonal(Sinv) * np.diagonal(H)))


def general_gradient(system: BlockedSystem, f: BlockedFactor, theta: np.ndarray,
                     beta: np.ndarray, r2: float, dof: float, reml: bool,
                     RX_inv: np.ndarray, consume: bool = False,
                     curvature: np.ndarray | None = None) -> np.ndarray:
    r"""Gradient of the profiled objective for any ``Lambda(theta)``.

    With ``A = Z'WZ``, ``M = Lambda' A Lambda + I``, ``F_0 = Z'W[X y]`` and ``D_j =
    d lambda_k / d theta_j`` (one p_k x p_k block per level of term k, from the structure's
    ``lambda_jacobian``), each part of the criterion is a sum over the levels of the term:

    .. math::

        \frac{\partial \log|M|}{\partial\theta_j} &= 2 \langle T_k, D_j\rangle, \qquad
            T_k = \sum_i \big[(M^{-1}\Lambda' A)_{ii}\big]' \\
        \frac{\partial r^2}{\partial\theta_j} &= -2 \langle \textstyle\sum_i g_i u_i',
            D_j\rangle, \qquad g = Z'W(y - X\beta - Z\Lambda u) \\
        \frac{\partial \log|C|}{\partial\theta_j} &= -2 \langle \textstyle\sum_i F_i C^{-1}
            V_i', D_j\rangle, \qquad V = M^{-1}\Lambda' F_0,\ F = F_0 - A\Lambda V

    (envelope theorem for ``r^2``; ``C = R_X' R_X``; ``u`` and ``g`` are the last column of
    ``V`` and ``F`` less ``beta`` times the others). The diagonal blocks of
    ``M^{-1}\Lambda'A`` come from the blocks of the factor without inverting ``Lambda`` (so
    singular fits are exact too): with ``S = L22 L22'``, ``m_c = lambda_1 L_c^{-T}`` and
    ``Y_c = A_{21,c}' \Lambda_r S^{-1} \Lambda_r' A_{21,c}`` (one sparse adjoint mat-vec of
    the product pattern),

    .. math::

        (M^{-1}\Lambda'A)_{cc} &= L_c^{-T}\big[(I + m_c' Y_c m_c) L_c^{-1} \lambda_1' A_{11,c}
            - m_c' Y_c\big] \quad \text{(first term, level c)} \\
        (M^{-1}\Lambda'A)_{rr} &= S^{-1} \Lambda_r' \tilde A_{22}, \qquad
            \tilde A_{22} = A_{22} - A_{21} C A_{21}', \ C_c = m_c m_c'
            \quad \text{(rest block)}.

    For scalar rest terms ``(M^{-1}\Lambda'A)_{aa} \lambda_a = 1 - (S^{-1})_{aa}`` is used
    instead (and 0 at ``lambda_a = 0``, where the objective is even in ``lambda_a``); for
    vector-valued ones likewise ``(I - (S^{-1})_{ii}) \lambda_k^{-1}`` while every
    ``lambda_k`` is well conditioned (:data:`LAMBDA_INVERSE_MIN_SV`).
    A gradient costs about three objective evaluations (``S^{-1}`` is the dominant part).
    ``consume=True`` lets it overwrite the factor's dense block (see
    :func:`scalar_terms_gradient`). ``curvature`` (one entry per parameter), when given,
    receives :func:`fisher_curvature`'s diagonal estimate of the Hessian (NaN where a
    ``lambda_k`` is singular).
    """
    A = system.A
    structures, slices = system.structures, system.slices
    blocks = system.pattern.blocks
    p = beta.shape[0]
    l1, p1 = system.l1, system.p1
    m = A.AXX.shape[0]
    lam1 = f.lam1
    L11 = f.L11
    L11inv = _lower_inverse(L11)                             # (l1, p1, p1)
    # lambda_1 L_c^{-T}: the factor holds it for vector-valued first terms (with a rest
    # block); for a scalar one it keeps the diagonal only
    m1 = (f.m1 if p1 > 1 and f.m1 is not None
          else np.matmul(lam1, L11inv.transpose(0, 2, 1)))
    has_rest = A.A21 is not None
    rd = system.rest_diag
    lams = f.lam_rest
    # -- V = M^{-1} Lambda' F_0 (all m columns, y last) by back-substitution -------------
    Vr = None
    c1 = f.L1X
    if has_rest:
        Vr = solve_lower_t(f.L22, f.LrX)
        LVr = rd.left(lams, Vr)                                # Lambda_r Vr
        corr = (system.a21_t @ LVr).reshape(l1, p1, m)        # A21' Lambda_r Vr
        c1 = c1 - np.matmul(m1.transpose(0, 2, 1), corr)      # L21' Vr = m1' A21' ...
    V1 = np.matmul(L11inv.transpose(0, 2, 1), c1)             # L_c^{-T} (...)
    LV1 = np.matmul(lam1, V1)                                 # Lambda_1 V1, (l1, p1, m)
    # -- F = F_0 - A Lambda V ----------------------------------------------------------
    F1 = A.A1X - np.matmul(A.A11, LV1)
    Fr = None
    if has_rest:
        flatLV1 = LV1.reshape(-1, m)
        F1 = F1 - corr                                        # A21' Lambda_r Vr again
        if _well_conditioned(lams):
            # the normal equations M V = Lambda' F_0 give Lambda' F = V, so level by level
            # F_i = lambda_k^{-T} V_i: no product with the dense A22 (nor A21)
            Fr = rd.left([_inverse_t(lam) for lam in lams], Vr)
        else:
            Fr = A.ArX - A.A21 @ flatLV1 - A.A22 @ LVr
    w_beta = np.concatenate([-beta, [1.0]])
    # per term: (G, H) sums over levels; rows of term 1 are (l1, p1, .)
    scale_r2 = dof / r2
    RXe = None
    if reml and p:
        RXe = RX_inv
    parts = [_term_parts(F1.reshape(l1 * p1, m), V1.reshape(l1 * p1, m), l1, p1, w_beta,
                         RXe, p)]
    if has_rest:
        for sl, nl, pk in rd.terms():
            parts.append(_term_parts(Fr[sl], Vr[sl], nl, pk, w_beta, RXe, p))
    # -- log |M| ---------------------------------------------------------------------
    T = [None] * len(blocks)
    Y = np.zeros((l1, p1, p1))
    if has_rest:
        Sinv = _dense_inverse(f.L22, consume)
        if not system.rest_scalar:
            if _reads_whole_rows(system, lams):
                Sinv = _symmetrize_lower(Sinv)   # block products read whole rows
            else:
                # the lower triangle and the levels' diagonal blocks are all that is read
                # (BlockDiagonal.sandwich_vector_terms): no pass over the whole block
                system.rest_diag.mirror_diagonal_blocks(Sinv)
        if curvature is not None:
            # the levels' diagonal blocks of M^{-1}, before the quadratic below scales Sinv
            shrink_rest = [_level_blocks(Sinv, sl, nl, pk) for sl, nl, pk in rd.terms()]
        # the rest terms' parts first: the first block's quadratic may scale Sinv in place
        T[1:] = _rest_logdet_parts(system, f, Sinv, lams, m1)
        Y = _first_block_quadratic(system, f, Sinv, lams)
    B11 = np.matmul(lam1.T, A.A11)                            # lambda_1' A11_c
    inner = np.matmul(np.matmul(m1.transpose(0, 2, 1), Y), m1)
    inner[:, np.arange(p1), np.arange(p1)] += 1.0
    X11 = np.matmul(L11inv.transpose(0, 2, 1),
                    np.matmul(np.matmul(inner, L11inv), B11)
                    - np.matmul(m1.transpose(0, 2, 1), Y))
    T[0] = X11.sum(axis=0).T
    # -- contract with d lambda / d theta ----------------------------------------------
    grad = np.zeros(theta.shape[0])
    jacobians = system.constant_jacobians()
    for k, (s, sl) in enumerate(zip(structures, slices, strict=True)):
        G, H = parts[k]
        total = 2.0 * T[k] - 2.0 * scale_r2 * G
        if H is not None:
            total = total - 2.0 * H
        jac = jacobians[k]
        if jac is None:
            jac = s.lambda_jacobian(theta[sl]).reshape(s.n_theta, -1)
        grad[sl] = jac @ total.ravel()                  # <d lambda / d theta_j, total>
    if curvature is not None:
        # the first term's own level blocks L_c^{-T} L_c^{-1}, without the crossed
        # correction (as shrinkage_curvature's 1 / d^2)
        blocks = [np.matmul(L11inv.transpose(0, 2, 1), L11inv)]
        if has_rest:
            blocks += shrink_rest
        curvature[:] = fisher_curvature(structures, slices, theta, [lam1, *lams], blocks,
                                        jacobians)
    return grad


def _level_blocks(X: np.ndarray, sl: slice, nl: int, p: int) -> np.ndarray:
    """The ``(nl, p, p)`` diagonal blocks of a term's levels in the symmetric ``X``
    (a scalar term's: its diagonal)."""
    if p == 1:
        return np.diagonal(X)[sl].reshape(nl, 1, 1).copy()
    idx = sl.start + np.arange(nl * p).reshape(nl, p)
    return X[idx[:, :, None], idx[:, None, :]]


def fisher_curvature(structures, slices, theta: np.ndarray, lams, minv_blocks,
                     jacobians) -> np.ndarray:
    r"""Diagonal estimate of the criterion's Hessian for any ``Lambda(theta)``: per unit
    of ``log theta_j`` for parameters bounded below by 0, of ``theta_j`` for the others.

    For one grouping factor with independent levels the expected information of the
    deviance in a covariance parameter is ``tr(P dG_j P dG_k)`` per level, ``G = lambda
    lambda'`` and ``P = Z'V^{-1}Z`` in units of sigma^2. With ``E_j = lambda^{-1} d
    lambda / d theta_j`` and ``F_j = E_j + E_j'``, ``dG_j = lambda F_j lambda'``, and
    ``lambda' P lambda = I - (M^{-1})_{ii} = K_i`` (the level's shrinkage), so

    .. math:: H_{jj} pprox \sum_i \operatorname{tr}(K_i F_j K_i F_j),

    times ``theta_j^2`` on the log scale. A scalar term gives ``4 sum_i r_i^2``
    (:func:`shrinkage_curvature`). Crossed terms are treated as if independent (their
    levels' own blocks of ``M^{-1}`` carry the crossing, as far as the caller's blocks do).

    Parameters
    ----------
    structures, slices : the terms' covariance structures and theta slices
    theta : ndarray
    lams : list of ndarray (p_k, p_k)
        Each term's ``lambda_k`` at ``theta``.
    minv_blocks : list of ndarray (l_k, p_k, p_k)
        Each term's levels' diagonal blocks of ``M^{-1}``.
    jacobians : list of ndarray (n_theta_k, p_k^2) or None
        ``d lambda_k / d theta`` where constant (else computed here).

    Returns
    -------
    ndarray
        NaN for a term whose ``lambda_k`` is not invertible.
    """
    out = np.full(theta.shape[0], np.nan)
    for s, sl, lam, blk, jac in zip(structures, slices, lams, minv_blocks, jacobians,
                                    strict=True):
        p = lam.shape[0]
        th = theta[sl]
        if jac is None:
            jac = np.asarray(s.lambda_jacobian(th), dtype=float).reshape(s.n_theta, -1)
        jz = jac.reshape(-1, p, p) * np.where(s.lower_bounds() == 0.0, th, 1.0)[:, None, None]
        try:
            E = np.linalg.solve(lam, jz)                          # (n_theta_k, p, p)
        except np.linalg.LinAlgError:
            continue
        if not np.all(np.isfinite(E)):
            continue
        F = E + E.transpose(0, 2, 1)
        K = np.eye(p) - blk                                       # (l_k, p, p)
        KF = np.matmul(K[:, None], F[None])                       # (l_k, n_theta_k, p, p)
        out[sl] = np.einsum("ljab,ljba->j", KF, KF)
    return out


def _term_parts(F: np.ndarray, V: np.ndarray, nl: int, pk: int, w_beta: np.ndarray,
                RX_inv: np.ndarray | None, p: int):
    """``sum_i g_i u_i'`` and (REML) ``sum_i F_i C^{-1} V_i'`` over a term's levels."""
    g = (F @ w_beta).reshape(nl, pk)
    u = (V @ w_beta).reshape(nl, pk)
    G = g.T @ u
    H = None
    if RX_inv is not None:
        Ft = (F[:, :p] @ RX_inv).reshape(nl, pk, p)
        Vt = (V[:, :p] @ RX_inv).reshape(nl, pk, p)
        # sum over levels i and columns c of Ft[i, a, c] Vt[i, b, c]: one matrix product
        # (tensordot's own set-up costs twice the product on small terms)
        H = Ft.transpose(1, 0, 2).reshape(pk, -1) @ Vt.transpose(1, 0, 2).reshape(pk, -1).T
    return G, H


def _lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular factors (levels, p, p); p = 1 and 2 in
    closed form (numpy's batched ``inv`` costs ~15 us of dispatch on 100 2 x 2 blocks,
    the elementwise formulas ~4 us)."""
    p = L.shape[-1]
    if p == 1:
        return 1.0 / L
    if p == 2:
        a, b, c = L[:, 0, 0], L[:, 1, 0], L[:, 1, 1]
        out = np.zeros_like(L)
        out[:, 0, 0] = 1.0 / a
        out[:, 1, 1] = 1.0 / c
        out[:, 1, 0] = -b / (a * c)
        return out
    return np.linalg.inv(L)


def _inverse_t(lam: np.ndarray) -> np.ndarray:
    """``lambda^{-T}`` of one term's factor (a scalar term's without a LAPACK call)."""
    if lam.shape == (1, 1):
        return 1.0 / lam
    return np.linalg.inv(lam).T


def _dense_inverse(L22: np.ndarray, consume: bool) -> np.ndarray:
    """``S^{-1}`` (lower triangle) from the Cholesky factor of the dense block, in place
    when ``consume`` (the factor is not used again), else in a copy."""
    Sinv = L22 if consume else L22.copy()
    if not inverse_crossprod_inplace(Sinv):
        raise np.linalg.LinAlgError("inverse of the dense block failed")
    return Sinv


def _reads_whole_rows(system: BlockedSystem, lams) -> bool:
    """Whether the vector-term gradient reads whole rows of ``S^{-1}``: the exact log-det
    parts near a singular ``lambda_k`` and the quadratic forms without a product pattern."""
    return system._product is None or not _well_conditioned(lams)


def _symmetrize_lower(S: np.ndarray) -> np.ndarray:
    """Full symmetric matrix from the lower triangle of ``S`` (C order), in place."""
    return mirror_lower_inplace(S)


def _term_scales(lams) -> np.ndarray:
    """Per rest term, the factor ``D`` of ``Lambda_r = D Lambda_v`` puts on its columns:
    ``lambda_k`` of a scalar term, 1 on a vector-valued one."""
    return np.array([lam[0, 0] if lam.shape[0] == 1 else 1.0 for lam in lams])


def _pair_coefficients(scales: np.ndarray) -> np.ndarray:
    """``s_k s_l`` times the symmetric weight (1 on the diagonal, 2 off it) for every
    class of :attr:`BlockedSystem.rest_pair_classes`, in the classes' order."""
    return (np.multiply.outer(scales, scales)[:, :, None] * np.array([1.0, 2.0])).ravel()


def _first_block_quadratic(system: BlockedSystem, f: BlockedFactor, Sinv: np.ndarray,
                           lams) -> np.ndarray:
    r"""``Y_c = A_{21,c}' \Lambda_r S^{-1} \Lambda_r' A_{21,c}`` per level of term 1.

    With vector-valued rest terms ``Sinv`` (full, symmetric) is overwritten: ``\Lambda_r =
    D \Lambda_v`` with ``D`` the scalar terms' ``lambda`` on the diagonal (1 on the
    vector terms' columns) and ``\Lambda_v`` the vector terms' blocks (identity on the
    scalar terms'), so only the vector terms' rows and columns of ``S^{-1}`` are
    multiplied in place and ``D`` scales the values read at the pattern's positions --
    not two passes over the whole dense block.
    """
    A = system.A
    l1, p1 = system.l1, system.p1
    product = system._product
    rd = system.rest_diag
    if system.rest_scalar:
        scale = f.lam_r
        S_lam = Sinv
    else:
        scale = rd.scalar_diagonal(lams)
        S_lam = rd.sandwich_vector_terms(lams, Sinv)
    if product is not None:
        # D is constant on each rest term: its products at the positions, with the
        # symmetric weights (1 on the diagonal, 2 off it), are one gather from a table per
        # pair of terms (as in _first_term_trace)
        vals = S_lam.reshape(-1)[product.flat]
        vals *= _pair_coefficients(_term_scales(lams))[system.rest_pair_classes]
        if p1 == 1:
            return (product.PT @ vals).reshape(l1, 1, 1)
        return product.block_quadratic(vals, weighted=True)
    # no pattern (too many pairs): the same quadratic forms through chunks of columns
    S_full = _symmetrize_lower(S_lam) if system.rest_scalar else S_lam
    S_full *= scale[:, None]
    S_full *= scale[None, :]
    A21T = A.A21.T.tocsr()
    out = np.empty((l1, p1, p1))
    step = max(p1, 2048 - 2048 % p1)
    for start in range(0, l1 * p1, step):
        stop = min(l1 * p1, start + step)
        blk = A21T[start:stop]                                  # (cols, q_r)
        left = np.asarray(blk @ S_full)                         # (cols, q_r)
        quad = np.asarray(blk.multiply(left).sum(axis=1)).ravel() if p1 == 1 else None
        if p1 == 1:
            out[start:stop, 0, 0] = quad
        else:
            dense = blk.toarray().reshape(-1, p1, blk.shape[1])
            out[start // p1:stop // p1] = np.matmul(left.reshape(-1, p1, blk.shape[1]),
                                                    dense.transpose(0, 2, 1))
    return out


def _rest_logdet_parts(system: BlockedSystem, f: BlockedFactor, Sinv: np.ndarray, lams,
                       m1: np.ndarray) -> list[np.ndarray]:
    r"""``T_k`` of the rest terms: ``sum_i [(S^{-1}\Lambda_r'\tilde A_{22})_{ii}]'``."""
    rd = system.rest_diag
    out = []
    if system.rest_scalar:
        diag = np.diagonal(Sinv)
        for (sl, _, _), lam in zip(rd.terms(), lams, strict=True):
            lv = float(lam[0, 0])
            val = 0.0 if lv == 0.0 else float(np.sum(1.0 - diag[sl])) / lv
            out.append(np.array([[val]]))
        return out
    if _well_conditioned(lams):
        return _rest_logdet_parts_inverse(rd, Sinv, lams)
    A = system.A
    At = np.array(A.A22, dtype=float, copy=True)
    C = system._first_weights(m1[:, 0, 0] if system.p1 == 1 else m1)
    if system._product is not None:
        system._product.subtract_from(At, C)
        At = _symmetrize_lower(At)
    else:
        # no product pattern (too many pairs): A21 C A21' as a sparse product
        l1, p1 = system.l1, system.p1
        Cb = sp.bsr_matrix((C.reshape(l1, p1, p1), np.arange(l1), np.arange(l1 + 1)),
                           shape=(l1 * p1, l1 * p1))
        At -= (A.A21 @ Cb @ A.A21.T).toarray()
    E = rd.right(lams, At)                                      # A~22 Lambda_r
    sums = rd.diag_block_sums(Sinv, E)                          # sum_i X_ii
    return [s.T for s in sums]


#: Smallest singular value of every rest term's ``lambda_k`` for which
#: :func:`_rest_logdet_parts` takes the shortcut through ``lambda_k^{-1}``. Relative
#: covariance factors are O(0.01 - 10); near a singular fit (a variance or a correlation at
#: its bound) the exact path, which never inverts ``lambda``, keeps the gradient accurate.
LAMBDA_INVERSE_MIN_SV = 1e-2


def _well_conditioned(lams) -> bool:
    """Every ``lambda_k`` invertible with singular values at least
    :data:`LAMBDA_INVERSE_MIN_SV`."""
    # a scalar term's singular value is |lambda| (no SVD call)
    return all((abs(float(lam[0, 0])) if lam.shape == (1, 1)
                else np.linalg.svd(lam, compute_uv=False)[-1]) >= LAMBDA_INVERSE_MIN_SV
               for lam in lams)


def _rest_logdet_parts_inverse(rd, Sinv: np.ndarray, lams) -> list[np.ndarray]:
    r"""``T_k`` of the rest terms when every ``lambda_k`` is invertible.

    ``S = \Lambda_r'\tilde A_{22}\Lambda_r + I`` gives ``S^{-1}\Lambda_r'\tilde A_{22} =
    (I - S^{-1})\Lambda_r^{-1}``, whose level blocks are ``(I - (S^{-1})_{ii})
    \lambda_k^{-1}``; so

    .. math:: T_k = \big[(l_k I - \textstyle\sum_i (S^{-1})_{ii})\,\lambda_k^{-1}\big]'

    needs only the diagonal blocks of ``S^{-1}`` (``Sinv`` symmetric): no
    ``\tilde A_{22}`` (a copy of the dense block, the pattern's product and a
    block-diagonal product per gradient).
    """
    out = []
    for (sl, nl, p), lam in zip(rd.terms(), lams, strict=True):
        blocks = _level_blocks(Sinv, sl, nl, p).sum(axis=0)
        out.append(np.linalg.solve(lam.T, (nl * np.eye(p) - blocks).T))
    return out
