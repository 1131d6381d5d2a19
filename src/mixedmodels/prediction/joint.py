r"""Variances of predictions of lme4-class fits (lmer, glmer) from the joint covariance of
``(b, beta)``.

**Population level** (no random effects in the prediction) -- the GLMM FAQ's recipe: with
``x`` a row of the fixed-effects model matrix of the new data and ``V`` the covariance of the
fixed effects (``m.vcov``; for a GLMM the Hessian-based one, as lme4's ``vcov``),
``Var(x \hat\beta) = x V x'``.

**Conditional** (``re_form=None`` or some terms): the prediction ``x\hat\beta + z\hat b``
estimates ``x\beta + z b`` with an error that has both the fixed effects' and the random
effects' uncertainty. With ``\Lambda`` the relative covariance factor, ``W`` the weights
(the prior weights of an LMM; the Fisher working weights at the conditional modes of a GLMM)
and ``s^2`` the scale (``\sigma^2`` of an LMM, the dispersion of a GLMM) the penalized
least-squares system of lme4

.. math::

    C = \begin{pmatrix} \Lambda' Z' W Z \Lambda + I & \Lambda' Z' W X \\
                        X' W Z \Lambda & X' W X \end{pmatrix}

is the precision of ``(u, \beta)`` (``b = \Lambda u``) given the data at the estimated
covariance parameters, so ``Cov(\hat b - b, \hat\beta - \beta) = s^2 D C^{-1} D'`` with
``D = diag(\Lambda, I)`` -- lme4's ``vcov(m, full = TRUE)`` (lme4 >= 1.1-36; this is also
what its ``predict(se.fit = TRUE)`` uses). For a row ``m = (z\Lambda, x)``, with
``A = \Lambda'Z'WZ\Lambda + I``, ``G = A^{-1} \Lambda'Z'WX`` and the Schur complement
``S = X'WX - X'WZ\Lambda G = R_X'R_X``,

.. math::

    Var = s^2 \big[ z\Lambda A^{-1} \Lambda' z' + t S^{-1} t' \big], \qquad
    t = x - z\Lambda G.

As in the FAQ and in lme4, the uncertainty of the covariance parameters is ignored (for a
GLMM the fixed effects' block is then the ``R_X``-based covariance, lme4's
``vcov(use.hessian = FALSE)``). Rows with the same random-effects levels and covariates
share one solve.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..results.matrices import lambda_matrix, z_matrix

__all__ = ["JointCovariance", "joint_covariance", "new_z_matrix"]

#: Right-hand sides per sparse solve with ``A`` (memory: q x chunk doubles).
SOLVE_CHUNK = 512


def new_z_matrix(design, rows, n_complete: int) -> sp.csr_matrix:
    """Sparse ``Z`` of the complete rows of :class:`~mixedmodels.results.predict.NewRows`
    in the fit's column layout (lme4's: term by term, level by level); the columns a
    ``re_form`` drops and levels the fit did not see are zero."""
    offsets = np.concatenate([[0], np.cumsum([t.q for t in design.terms])])
    rr, cc, vv = [], [], []
    for k, mask, Z, codes in rows.terms:
        p = design.terms[k].p
        ok = codes >= 0
        for j in np.flatnonzero(mask):
            rr.append(np.flatnonzero(ok))
            cc.append(offsets[k] + codes[ok] * p + j)
            vv.append(Z[ok, j])
    q = int(offsets[-1])
    if not rr:
        return sp.csr_matrix((n_complete, q))
    return sp.csr_matrix((np.concatenate(vv), (np.concatenate(rr), np.concatenate(cc))),
                         shape=(n_complete, q))


class JointCovariance:
    """``s^2 C^{-1}`` of the module docstring, applied to prediction rows.

    Parameters
    ----------
    ZL : sparse matrix (n, q)
        ``Z Lambda`` of the fitting rows.
    X : ndarray (n, p)
    w : ndarray (n,)
        Weights.
    scale : float
        ``s^2``.
    """

    def __init__(self, ZL, X: np.ndarray, w: np.ndarray, scale: float):
        ZL = sp.csr_matrix(ZL)
        WZL = sp.diags(w) @ ZL
        q = ZL.shape[1]
        A = (ZL.T @ WZL + sp.identity(q, format="csr")).tocsc()
        self._lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0) if q else None
        B = np.asarray(WZL.T @ X) if q else np.zeros((0, X.shape[1]))
        self.G = self._solve(B)                                      # A^{-1} B
        S = X.T @ (w[:, None] * X) - B.T @ self.G
        self.S_inv = np.linalg.inv(S) if S.size else S
        self.scale = float(scale)
        self.q = q

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        if self._lu is None or rhs.size == 0:
            return np.zeros_like(rhs, dtype=float)
        return self._lu.solve(np.asarray(rhs, dtype=float))

    def variance(self, ML, X: np.ndarray) -> np.ndarray:
        """Prediction variances of rows ``(z Lambda, x)`` (``ML``: sparse (m, q); ``X``:
        (m, p))."""
        ML = sp.csr_matrix(ML)
        m = X.shape[0]
        key = _row_keys(ML, X)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        MLu, Xu = ML[first], X[first]
        term1 = np.zeros(len(first))
        for s in range(0, len(first), SOLVE_CHUNK):
            block = MLu[s:s + SOLVE_CHUNK]
            if block.nnz == 0:
                continue
            Y = self._solve(block.T.toarray())                        # (q, chunk)
            term1[s:s + SOLVE_CHUNK] = np.asarray(block.multiply(Y.T).sum(axis=1)).ravel()
        T = Xu - (MLu @ self.G if self.q else 0.0)
        term2 = np.einsum("ij,jk,ik->i", T, self.S_inv, T)
        out = self.scale * (term1 + term2)
        return out[np.asarray(inverse).reshape(m)]


def _row_keys(ML: sp.csr_matrix, X: np.ndarray) -> np.ndarray:
    """A dense key per row (its random-effects coefficients and covariates), for finding
    repeated rows; padded to the largest number of nonzeros per row."""
    counts = np.diff(ML.indptr)
    width = int(counts.max()) if counts.size else 0
    m = X.shape[0]
    cols = np.full((m, width), -1.0)
    vals = np.zeros((m, width))
    if width:
        pos = np.arange(ML.nnz) - np.repeat(ML.indptr[:-1], counts)
        rows = np.repeat(np.arange(m), counts)
        cols[rows, pos] = ML.indices
        vals[rows, pos] = ML.data
    return np.hstack([cols, vals, X])


def joint_covariance(m) -> JointCovariance:
    """The joint covariance of an lmer or glmer fit (module docstring)."""
    d = m.design
    ZL = z_matrix(d) @ lambda_matrix(d, m.theta)
    family = getattr(m, "family", None)
    if family is None:
        w = np.ones(d.nobs) if d.weights is None else np.asarray(d.weights, dtype=float)
        scale = m.sigma ** 2
    else:
        sol = m.solution
        w = family.fisher_weights(sol.eta, sol.mu, m._prior())
        scale = m.phi
    return JointCovariance(ZL, d.X, w, scale)
