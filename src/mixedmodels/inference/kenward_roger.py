r"""Kenward-Roger adjusted covariance of the fixed effects and denominator df (pbkrtest).

The marginal covariance of an LMM is linear in the variance parameters ``gamma``:
``Sigma = sum_i gamma_i G_i`` with, per random-effects term ``k`` and element ``(a, b)``
(``a <= b``) of its covariance matrix, ``G = Z_k (I ⊗ E_ab) Z_k'`` (``E_ab`` symmetric with
ones at ``(a, b)`` and ``(b, a)``), and ``G = W^{-1}`` for the residual variance (pbkrtest's
``get_SigmaG``). With ``Phi = (X' Sigma^{-1} X)^{-1}`` (REML ``vcov``),

.. math::

    P_i &= -X' \Sigma^{-1} G_i \Sigma^{-1} X, \qquad
    Q_{ij} = X' \Sigma^{-1} G_i \Sigma^{-1} G_j \Sigma^{-1} X \\
    \mathcal{I}_{ij} &= \operatorname{tr}(\Sigma^{-1} G_i \Sigma^{-1} G_j)
                        - 2 \operatorname{tr}(\Phi Q_{ij})
                        + \operatorname{tr}(\Phi P_i \Phi P_j), \qquad W = 2\,\mathcal{I}^{-1} \\
    \Phi_A &= \Phi + 2 \Phi \Big[\sum_{ij} W_{ij} (Q_{ij} - P_i \Phi P_j)\Big] \Phi

(Kenward & Roger 1997, with ``R_ij = 0`` because ``Sigma`` is linear in ``gamma``).

pbkrtest forms these with n x n matrices. Here every quantity is reduced to the
``(p + q)``-dimensional space of ``U = [X Z]``: with ``Sigma = sigma^2 (I + Z Lambda
Lambda' Z')`` (after scaling rows by ``sqrt(w)``), ``Sigma^{-1} = sigma^{-2} N``,
``N = I - Z K Z'``, ``K = Lambda (Lambda' Z'Z Lambda + I)^{-1} Lambda'`` and

.. math:: U' N U = U'U - R' K R, \quad U' N^2 U = U'U - 2 R'KR + R'KSKR, \quad R = Z'U,
          S = Z'Z,

so the cost grows with ``q^2`` rather than ``n^2``. The denominator df of a contrast
``L`` come from pbkrtest's ``Lb_ddf`` (and ``.KR_adjust`` for F tests).

The algebra runs in the ``W``-orthonormal basis ``X~ = X R^{-1}`` of
:class:`~mixedmodels.linalg.FixedBasis` (a predictor around 1e5 would make ``U'NU`` lose
its digits to cancellation) and is mapped back exactly: everything above is equivariant
under ``X -> X A`` (``Phi -> A^{-1} Phi A^{-T}``, ``P_i -> A' P_i A``; the information
and ``W`` are invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import stats

from .._errors import MixedModelsError
from ..linalg import FixedBasis

__all__ = ["KR_MAX_Q", "KenwardRogerState", "kenward_roger_state", "kr_state"]

#: Largest number of random effects for which the dense q x q algebra is attempted.
KR_MAX_Q = 6000
#: Smallest |eigenvalue| of the information matrix for a plain inverse (pbkrtest: 1e-10).
INFO_COND_TOL = 1e-10
#: |df2 - 2| below this: no F scaling (pbkrtest's rule).
F_SCALING_TOL = 0.01
#: Values of ``V0`` below this are set to zero (pbkrtest).
V0_TOL = 1e-10
#: x/y with both below this is taken as 1 (pbkrtest's ``.divZero``).
DIV_ZERO_TOL = 1e-14


def _div_zero(x: float, y: float) -> float:
    return 1.0 if abs(x) < DIV_ZERO_TOL and abs(y) < DIV_ZERO_TOL else x / y


@dataclass(frozen=True)
class KenwardRogerState:
    """What the Kenward-Roger tests need from a REML fit.

    Attributes
    ----------
    beta : ndarray (p,)
    Phi : ndarray (p, p)
        Unadjusted covariance of the fixed effects (``vcov``).
    PhiA : ndarray (p, p)
        Kenward-Roger adjusted covariance.
    P : ndarray (g, p, p)
        ``P_i`` per variance parameter.
    W : ndarray (g, g)
        Twice the inverse expected (REML) information of the variance parameters.
    """

    beta: np.ndarray
    Phi: np.ndarray
    PhiA: np.ndarray
    P: np.ndarray
    W: np.ndarray

    def _a1_a2(self, Theta: np.ndarray) -> tuple[float, float]:
        U = np.matmul(np.matmul(Theta @ self.Phi, self.P), self.Phi)     # (g, p, p)
        tr = np.trace(U, axis1=1, axis2=2)
        A1 = float(np.einsum("ij,i,j->", self.W, tr, tr))
        A2 = float(np.einsum("ij,iab,jba->", self.W, U, U))
        return A1, A2

    def _ddf_scaling(self, L: np.ndarray) -> tuple[float, float, int]:
        """Denominator df, F scaling and rank for the contrast rows ``L``."""
        q = int(np.linalg.matrix_rank(L))
        Theta = L.T @ np.linalg.solve(L @ self.Phi @ L.T, L)
        A1, A2 = self._a1_a2(Theta)
        B = (A1 + 6.0 * A2) / (2.0 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        V0 = 1.0 + c1 * B
        V1 = 1.0 - c2 * B
        V2 = 1.0 - c3 * B
        V0 = 0.0 if abs(V0) < V0_TOL else V0
        rho = _div_zero(1.0 - A2 / q, V1) ** 2 * V0 / V2 / q
        df2 = 4.0 + (q + 2) / (q * rho - 1.0)
        scale = 1.0 if abs(df2 - 2.0) < F_SCALING_TOL else df2 * (1.0 - A2 / q) / (df2 - 2.0)
        return float(df2), float(scale), q

    def contrast_df(self, L: np.ndarray) -> tuple[float, float]:
        """Adjusted variance of ``L beta`` and its Kenward-Roger df (one contrast row)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        df2, _, _ = self._ddf_scaling(L)
        return float((L @ self.PhiA @ L.T)[0, 0]), df2

    def f_test(self, L: np.ndarray) -> tuple[float, int, float, float]:
        """Scaled F statistic, numerator df, denominator df and p-value for ``L beta = 0``
        (pbkrtest's ``KRmodcomp``; lmerTest reports this F)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        df2, scale, q = self._ddf_scaling(L)
        Lb = L @ self.beta
        wald = float(Lb @ np.linalg.solve(L @ self.PhiA @ L.T, Lb))
        F = scale * wald / q
        return F, q, df2, float(stats.f.sf(F, q, df2))


def _z_matrix(design) -> sp.csc_matrix:
    """Sparse ``Z`` (n x q), columns in the order of the random-effects vector ``u``."""
    rows, cols, vals, off = [], [], [], 0
    n = design.nobs
    for t in design.terms:
        r = np.repeat(np.arange(n), t.p)
        c = off + (t.grouping.codes[:, None] * t.p + np.arange(t.p)[None, :]).ravel()
        rows.append(r)
        cols.append(c)
        vals.append(t.Z.ravel())
        off += t.q
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, off))


def _lambda_matrix(design, theta: np.ndarray) -> np.ndarray:
    q = design.q
    out = np.zeros((q, q))
    off = 0
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        lam = t.structure.lambda_(theta[sl])
        idx = off + np.arange(t.q).reshape(t.nlevels, t.p)
        out[idx[:, :, None], idx[:, None, :]] = lam[None, :, :]
        off += t.q
    return out


def _pairs(p: int) -> list[tuple[int, int]]:
    """Elements (a, b), a <= b, of a p x p covariance, in pbkrtest's (upper triangle,
    column by column) order: the order of an unstructured term's basis below."""
    return [(a, b) for b in range(p) for a in range(b + 1)]


def _basis(t) -> list[list[tuple[int, int, float]]]:
    """The term's covariance basis ``E_i`` as sparse entries ``(a, b, value)``: for lme4's
    unstructured terms the elements (a, b), a <= b, in pbkrtest's (upper triangle, column
    by column) order; for ``diag``, ``homdiag`` and ``propto`` their variance parameters
    (the covariance is linear in them)."""
    basis = t.structure.linear_basis()
    if basis is None:
        raise MixedModelsError(
            f"Kenward-Roger's method assumes a covariance linear in its parameters; the "
            f"{t.structure.keyword}() structure of {t.term.source!r} is not (use "
            "ddf='satterthwaite', which works for every structure)")
    out = []
    for E in basis:
        a, b = np.nonzero(E)
        out.append([(int(i), int(j), float(E[i, j])) for i, j in zip(a, b, strict=True)])
    return out


def kenward_roger_state(m) -> KenwardRogerState:
    """Kenward-Roger quantities for the REML-fitted LMM ``m``."""
    if not m.reml:
        raise MixedModelsError(
            "Kenward-Roger's method is only available for REML fits (as in lmerTest and "
            "pbkrtest); refit with REML=True, or use ddf='satterthwaite'")
    d = m.design
    return kr_state(d, d.weights, m.theta, m.sigma ** 2, m.beta)


def kr_state(d, weights, theta: np.ndarray, s2: float, beta: np.ndarray,
             estimate_scale: bool = True) -> KenwardRogerState:
    """Kenward-Roger quantities of the LMM ``y = X beta + Z b + e`` with ``Var(e) = s2
    W^{-1}``, ``Var(b) = s2 Lambda(theta) Lambda(theta)'`` at the given parameters.

    Parameters
    ----------
    d : Design
        ``X``, ``Z`` and the random-effects terms.
    weights : ndarray (n,) or None
        ``W`` (prior weights of an LMM; the working weights of a GLMM's working model).
    theta : ndarray
        Relative covariance parameters.
    s2 : float
        The scale ``sigma^2`` (a GLMM's dispersion ``phi``).
    beta : ndarray (p,)
    estimate_scale : bool
        ``s2`` is an estimated variance parameter (False for binomial and Poisson working
        models, whose scale is known to be 1: it is then left out of the information).

    Returns
    -------
    KenwardRogerState
    """
    if d.q > KR_MAX_Q:
        raise MixedModelsError(
            f"Kenward-Roger needs dense {d.q} x {d.q} matrices here (more than {KR_MAX_Q} "
            "random effects); use ddf='satterthwaite', which scales to large models")
    sw = np.ones(d.nobs) if weights is None else np.sqrt(weights)
    basis = FixedBasis.of(d.X, weights)
    X = basis.X * sw[:, None]
    Z = sp.diags(sw) @ _z_matrix(d)
    p, q, n = d.p, d.q, d.nobs
    S = np.asarray((Z.T @ Z).todense())
    ZX = np.asarray(Z.T @ X)
    Lam = _lambda_matrix(d, theta)
    M = Lam.T @ S @ Lam + np.eye(q)
    K = Lam @ np.linalg.solve(M, Lam.T)
    K = 0.5 * (K + K.T)
    G = np.block([[X.T @ X, ZX.T], [ZX, S]])
    R = np.hstack([ZX, S])                        # Z'U
    KR = K @ R
    SKR = S @ KR
    F1 = G - R.T @ KR                             # U' N U
    F2 = G - 2.0 * R.T @ KR + KR.T @ SKR          # U' N^2 U
    KS = K @ S
    KZX, SKZX = KR[:, :p], SKR[:, :p]             # K Z'X and S K Z'X
    # X' N^3 X = X'X - 3 X'ZKZ'X + 3 X'ZKSKZ'X - X'ZKSKSKZ'X
    F3xx = (G[:p, :p] - 3.0 * ZX.T @ KZX + 3.0 * KZX.T @ SKZX - SKZX.T @ K @ SKZX)
    trN2 = n - 2.0 * np.trace(KS) + float(np.sum(KS * KS.T))
    Phi = s2 * np.linalg.inv(F1[:p, :p])
    Phi = 0.5 * (Phi + Phi.T)
    st = _assemble(d, beta, Phi, s2, F1, F2, F3xx, trN2, estimate_scale)
    Ri = basis.R_inv
    return KenwardRogerState(st.beta, _sym_product(Ri, st.Phi), _sym_product(Ri, st.PhiA),
                             np.matmul(np.matmul(basis.R.T, st.P), basis.R), st.W)


def _sym_product(A: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``A S A'``, symmetrized."""
    out = A @ S @ A.T
    return 0.5 * (out + out.T)


def _assemble(d, beta, Phi, s2, F1, F2, F3xx, trN2,
              estimate_scale: bool = True) -> KenwardRogerState:
    """P, Q and the trace terms per pair of variance parameters, then W and PhiA (the
    residual scale, the last parameter, left out when it is known)."""
    p = Phi.shape[0]
    FXZ, FZZ = F1[:p, p:], F1[p:, p:]
    F2XZ, F2ZZ = F2[:p, p:], F2[p:, p:]
    blocks, off = [], 0
    for t in d.terms:
        blocks.append((off, t.nlevels, t.p))
        off += t.q
    params = [(k, e) for k, t in enumerate(d.terms) for e in _basis(t)]
    A = [FXZ[:, o:o + lv * pk].reshape(p, lv, pk) for o, lv, pk in blocks]
    A2 = [F2XZ[:, o:o + lv * pk].reshape(p, lv, pk) for o, lv, pk in blocks]
    g = len(params) + 1
    P = np.zeros((g, p, p))
    Q = np.zeros((g, g, p, p))
    Kt = np.zeros((g, g))
    for i, (k, e) in enumerate(params):
        P[i] = -sum(v * A[k][:, :, x] @ A[k][:, :, y].T for x, y, v in e) / s2 ** 2
        QiR = sum(v * A[k][:, :, x] @ A2[k][:, :, y].T for x, y, v in e) / s2 ** 3
        Q[i, -1], Q[-1, i] = QiR, QiR.T
        o, lv, pk = blocks[k]
        diag2 = F2ZZ[o:o + lv * pk, o:o + lv * pk].reshape(lv, pk, lv, pk)
        Kt[i, -1] = Kt[-1, i] = sum(v * np.trace(diag2[:, y, :, x]) for x, y, v in e) / s2 ** 2
    for k1, (o1, l1, p1) in enumerate(blocks):
        for k2, (o2, l2, p2) in enumerate(blocks):
            B = FZZ[o1:o1 + l1 * p1, o2:o2 + l2 * p2].reshape(l1, p1, l2, p2)
            Wq = np.einsum("xga,gehc,yhf->aecfxy", A[k1], B, A[k2], optimize=True)
            V = np.einsum("gehc,gahf->aecf", B, B, optimize=True)
            for i, (ki, ei) in enumerate(params):
                if ki != k1:
                    continue
                for j, (kj, ej) in enumerate(params):
                    if kj != k2:
                        continue
                    Q[i, j] = sum(vi * vj * Wq[x, y, u, v] for x, y, vi in ei
                                  for u, v, vj in ej) / s2 ** 3
                    Kt[i, j] = sum(vi * vj * V[x, y, u, v] for x, y, vi in ei
                                   for u, v, vj in ej) / s2 ** 2
    P[-1] = -F2[:p, :p] / s2 ** 2
    Q[-1, -1] = F3xx / s2 ** 3
    Kt[-1, -1] = trN2 / s2 ** 2
    if not estimate_scale:
        P, Q, Kt = P[:-1], Q[:-1, :-1], Kt[:-1, :-1]
    PhiP = np.matmul(Phi, P)                                        # (g, p, p)
    info = (Kt - 2.0 * np.einsum("ab,ijba->ij", Phi, Q)
            + np.einsum("iab,jba->ij", PhiP, PhiP))
    info = 0.5 * (info + info.T)
    evals = np.linalg.eigvalsh(info)
    W = 2.0 * (np.linalg.inv(info) if np.min(np.abs(evals)) > INFO_COND_TOL
               else np.linalg.pinv(info, hermitian=True))
    UU = np.einsum("ij,ijab->ab", W, Q) - np.einsum("ij,iab,bc,jcd->ad", W, P, Phi, P)
    UU = 0.5 * (UU + UU.T)
    PhiA = Phi + 2.0 * Phi @ UU @ Phi
    return KenwardRogerState(np.asarray(beta, float), Phi, PhiA, P, W)
