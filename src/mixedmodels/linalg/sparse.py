r"""Sparse LU fallback for models whose random effects are too many for dense blocks.

When the rest block of the blocked algorithm would be a dense matrix of more than
:data:`SPARSE_MIN_REST` columns (two crossed factors with tens of thousands of levels each),
the whole random-effects part is factored as one sparse matrix

.. math:: M = \Lambda' Z' W Z \Lambda + I = P' L U P

with SuperLU (``scipy.sparse.linalg.splu``) in symmetric mode without pivoting, which for
this positive-definite matrix is a Cholesky factorization up to a diagonal scaling:
``log det M = sum log diag(U)``. The fixed effects are profiled through the Schur complement
``[X y]' W [X y] - B' M^{-1} B`` with ``B = Lambda' Z' W [X y]``, whose Cholesky factor plays the
role of ``LXX`` in the other two methods. Interface of
:class:`~mixedmodels.linalg.blocked.BlockedSystem`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .lapack import chol_inplace
from .layout import CrossProductPattern, CrossProducts, lambda_layout, theta_slices

__all__ = ["SPARSE_MIN_REST", "SparseFactor", "SparseSystem"]

#: Rest blocks with more columns than this use the sparse fallback (a dense block of this
#: size takes ~300 MB and a dense Cholesky per evaluation of several seconds).
SPARSE_MIN_REST = 6000


@dataclass
class SparseFactor:
    """SuperLU factor of ``M`` and the Schur-complement factor of the fixed effects."""

    lu: object
    Y: np.ndarray          # M^{-1} Lambda' Z' W [X y]
    LXX: np.ndarray
    logdet_Z: float

    def logdet_X(self, p: int) -> float:
        return 2.0 * float(np.sum(np.log(np.diagonal(self.LXX)[:p])))

    def pwrss(self) -> float:
        return float(self.LXX[-1, -1] ** 2)


class SparseSystem:
    """Evaluates :class:`SparseFactor` for any theta (interface of ``BlockedSystem``)."""

    def __init__(self, pattern: CrossProductPattern, structures):
        self.pattern = pattern
        self.structures = tuple(structures)
        self.slices = theta_slices(self.structures)
        self.q = int(sum(b.q for b in pattern.blocks))
        rows, cols, src = lambda_layout(pattern.blocks)
        # Lambda as CSR with a fixed pattern; data filled from theta on each call
        lam = sp.csr_matrix((np.arange(1, rows.size + 1, dtype=float), (rows, cols)),
                            shape=(self.q, self.q))
        self._src = src[lam.data.astype(np.int64) - 1]
        self._lam_indices, self._lam_indptr = lam.indices, lam.indptr
        self.A: CrossProducts | None = None

    def set_cross_products(self, A: CrossProducts) -> None:
        p1, l1 = self.pattern.p1, self.pattern.l1
        q1 = p1 * l1
        m = A.AXX.shape[0]
        idx = np.arange(q1).reshape(l1, p1)
        r = np.broadcast_to(idx[:, :, None], A.A11.shape).ravel()
        c = np.broadcast_to(idx[:, None, :], A.A11.shape).ravel()
        A11 = sp.csr_matrix((A.A11.ravel(), (r, c)), shape=(q1, q1))
        if A.A21 is None:
            self.Azz = A11
            self.Azx = A.A1X.reshape(q1, m)
        else:
            A22 = A.A22 if sp.issparse(A.A22) else sp.csr_matrix(A.A22)
            self.Azz = sp.bmat([[A11, A.A21.T], [A.A21, A22]], format="csr")
            self.Azx = np.vstack([A.A1X.reshape(q1, m), A.ArX])
        self.A = A
        self._eye = sp.identity(self.q, format="csr")

    def lambda_matrix(self, theta: np.ndarray) -> sp.csr_matrix:
        lam = np.concatenate([s.lambda_(theta[sl]).ravel()
                              for s, sl in zip(self.structures, self.slices, strict=True)])
        return sp.csr_matrix((lam[self._src], self._lam_indices, self._lam_indptr),
                             shape=(self.q, self.q))

    def factorize(self, theta: np.ndarray, scratch: bool = False) -> SparseFactor | None:
        Lam = self.lambda_matrix(theta)
        M = (Lam.T @ self.Azz @ Lam + self._eye).tocsc()
        try:
            lu = splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                      options={"SymmetricMode": True})
        except RuntimeError:
            return None
        diag = lu.U.diagonal()
        if np.any(diag <= 0):
            return None
        B = np.asarray(Lam.T @ self.Azx)
        Y = lu.solve(B)
        LXX = np.ascontiguousarray(self.A.AXX - B.T @ Y)
        if not chol_inplace(LXX):
            return None
        return SparseFactor(lu, Y, LXX, float(np.sum(np.log(diag))))

    def solve_u(self, f: SparseFactor, beta: np.ndarray) -> np.ndarray:
        p = beta.shape[0]
        return f.Y[:, p] - f.Y[:, :p] @ beta

    def cond_var_u(self, f: SparseFactor, chunk: int = 512) -> list[np.ndarray]:
        """Diagonal blocks of ``M^{-1}`` per term, by solves over chunks of unit vectors."""
        out, off = [], 0
        for b in self.pattern.blocks:
            blk = np.empty((b.nlevels, b.p, b.p))
            step = max(b.p, chunk - chunk % b.p)
            for start in range(0, b.q, step):
                stop = min(b.q, start + step)
                E = np.zeros((self.q, stop - start))
                E[off + start + np.arange(stop - start), np.arange(stop - start)] = 1.0
                X = f.lu.solve(E)[off + start:off + stop]        # rows of this chunk
                lv = (stop - start) // b.p
                X = X.reshape(lv, b.p, lv, b.p)
                blk[start // b.p:stop // b.p] = X[np.arange(lv), :, np.arange(lv), :]
            out.append(blk)
            off += b.q
        return out
