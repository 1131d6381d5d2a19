r"""The penalized least-squares system of PIRLS, refactored at every PIRLS iteration.

Each PIRLS step factors, for new working weights ``W``,

.. math::

    L L' = \begin{bmatrix} \Lambda' Z' W Z \Lambda + I & \Lambda' Z' W [X\,r] \\
                           [X\,r]' W Z \Lambda & [X\,r]' W [X\,r] \end{bmatrix}

(with ``beta`` fixed, the Laplace stage, ``[X r]`` is just the working residual ``r``). The
cross-products come from :class:`~mixedmodels.linalg.CrossProductPattern` (bincounts over
precomputed indices) and the factor is blocked as in
:class:`~mixedmodels.linalg.BlockedSystem` -- the first term block diagonal, the other
(scalar) terms dense::

    L11 = chol(Lambda1' A11 Lambda1 + I)                 per level of term 1
    L21 = Lambdar' A21 Lambda1 L11^{-T}                  q_r x q_1, dense here
    L22 = chol(Lambdar' A22 Lambdar + I - L21 L21')
    L1X = L11^{-1} Lambda1' A1X,  LrX = L22^{-1} (Lambdar' ArX - L21 L1X)
    LXX = chol(AXX - L1X' L1X - LrX' LrX)

where ``L21`` takes the cheaper of two forms. ``BlockedSystem`` keeps ``L21`` as a scipy
sparse matrix and precomputes the products of its pattern, which pays off when the weights
stay fixed while theta changes (linear mixed models); in PIRLS the weights change at every
call, and scipy's per-call overheads dominate small systems. Here ``L21`` is either dense
(``q_r^2 q_1`` flops for ``L21 L21'`` at BLAS speed) or kept as values on ``A21``'s fixed
pattern, with ``L21 L21'`` summed over the pairs of entries of each column by one
``bincount`` (:class:`PatternMatrix`); :func:`dense_is_cheaper` compares the two (crossed
factors with many observations per pair of levels, such as VerbAgg's subjects x items, go
dense; observation-level or nested factors, whose ``A21`` is very sparse, use the pattern).
Vector-valued terms use :class:`~mixedmodels.linalg.BlockedSystem`. Block 1 is
:func:`~mixedmodels.linalg.blocked.first_block_factor`, shared with ``BlockedSystem``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..linalg import BlockedSystem, CrossProductPattern, CrossProducts
from ..linalg.blocked import first_block_factor
from ..linalg.lapack import chol_inplace, solve_lower, solve_lower_t
from ..linalg.layout import PatternValues

_dpotrf = lapack.dpotrf

__all__ = ["DENSE_L21_MAX_ENTRIES", "MergedPIRLSSystem", "PIRLSFactor", "PIRLSSystem",
           "PatternMatrix", "dense_is_cheaper"]

#: Largest ``q_r * q_1`` for which ``L21`` is formed densely (16 MB of doubles).
DENSE_L21_MAX_ENTRIES = 2_000_000
#: Relative cost of one sparse pair product (gather, multiply, scatter) and one dense flop.
SPARSE_PAIR_COST = 25.0
#: Fixed overhead of refreshing the sparse product pattern, in dense flops.
SPARSE_OVERHEAD = 5e5


def dense_is_cheaper(q_r: int, q1: int, pairs: int) -> bool:
    """Whether forming ``L21 L21'`` densely beats the refreshed sparse product (module
    docstring); ``pairs`` is the number of entry pairs within the columns of ``A21``."""
    if q_r * q1 > DENSE_L21_MAX_ENTRIES:
        return False
    return q_r * q_r * q1 <= SPARSE_PAIR_COST * pairs + SPARSE_OVERHEAD


class PatternMatrix:
    """A ``(rows, cols)`` matrix stored as values on a fixed sparsity pattern.

    Products with vectors and (few-column) matrices are ``bincount`` sums, free of the
    per-call costs of scipy's sparse classes.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape):
        self.rows, self.cols, self.data, self.shape = rows, cols, data, shape

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 1:
            return np.bincount(self.rows, self.data * x[self.cols], minlength=self.shape[0])
        return np.column_stack([self @ x[:, j] for j in range(x.shape[1])])

    @property
    def T(self) -> PatternMatrix:
        return PatternMatrix(self.cols, self.rows, self.data, self.shape[::-1])


@dataclass
class PIRLSFactor:
    """Blocks of ``L`` (see the module docstring); ``L21`` dense (None without a rest
    block), ``logdet = log|Lambda' Z' W Z Lambda + I|``."""

    L11: np.ndarray
    L21: np.ndarray | PatternMatrix | None
    L22: np.ndarray | None
    L1X: np.ndarray
    LrX: np.ndarray | None
    LXX: np.ndarray | None
    logdet: float


class PIRLSSystem:
    """Factor-and-solve of the PIRLS system for one design (see the module docstring).

    Parameters
    ----------
    pattern : CrossProductPattern
    system : BlockedSystem
        Same pattern; used when the dense path does not apply.
    """

    def __init__(self, pattern: CrossProductPattern, system: BlockedSystem):
        self.pattern = pattern
        self.system = system
        self.p1, self.l1, self.q1 = pattern.p1, pattern.l1, pattern.q1
        self.q_r = pattern.q_r
        rest = pattern.blocks[1:]
        # "dense" | "pattern" | "blocked"; decided when A21's pattern is first seen
        self.mode: str | None = None if all(b.p == 1 for b in rest) else "blocked"
        self._flat21 = None
        self._rest_levels = np.array([b.nlevels for b in rest], dtype=np.int64)
        self._diag_r = np.diag_indices(self.q_r)

    @property
    def needs_csr(self) -> bool:
        """Whether :meth:`factor` needs ``A21`` as a scipy matrix (the blocked fallback for
        vector-valued rest terms) rather than its values on the pattern."""
        return self.mode == "blocked"

    def _choose_mode(self, A21) -> str:
        if A21 is None:
            return "dense"
        rows = np.repeat(np.arange(self.q_r), np.diff(A21.indptr))
        cols = A21.indices.astype(np.int64)
        counts = np.bincount(cols, minlength=self.q1).astype(np.int64)
        pairs = int(np.sum(counts * (counts + 1) // 2))
        if dense_is_cheaper(self.q_r, self.q1, pairs):
            return "dense"
        if self.p1 != 1:
            return "blocked"
        # pairs of entries within each column of A21: (ea, eb), eb at or before ea
        order = np.argsort(cols, kind="stable")
        starts = np.cumsum(counts) - counts
        col_of = cols[order]
        pos = np.arange(order.size) - starts[col_of]
        n_per = pos + 1
        ea = np.repeat(np.arange(order.size), n_per)
        offs = np.arange(ea.size) - np.repeat(np.cumsum(n_per) - n_per, n_per)
        eb = starts[col_of][ea] + offs
        ea, eb = order[ea], order[eb]
        ra, rb = rows[ea], rows[eb]
        self._rows21, self._cols21 = rows, cols
        self._pair_a, self._pair_b = ea, eb
        self._pair_flat = np.maximum(ra, rb) * self.q_r + np.minimum(ra, rb)
        return "pattern"

    def _dense_a21(self, A21) -> np.ndarray:
        if self._flat21 is None:
            rows = np.repeat(np.arange(self.q_r), np.diff(A21.indptr))
            self._flat21 = rows * self.q1 + A21.indices
        out = np.zeros(self.q_r * self.q1)
        out[self._flat21] = A21.data
        return out.reshape(self.q_r, self.q1)

    def factor(self, theta: np.ndarray, A: CrossProducts, need_xx: bool = True):
        """Factor for ``theta`` and the cross-products ``A``: a :class:`PIRLSFactor` (or a
        :class:`~mixedmodels.linalg.BlockedFactor` on the fallback path); None when a block
        is not numerically positive definite. ``need_xx=False`` skips ``LXX`` (the solve
        for ``u`` at fixed beta does not use it)."""
        sysm = self.system
        if self.mode is None:
            self.mode = self._choose_mode(A.A21)
        if self.mode == "blocked":
            if isinstance(A.A21, PatternValues):
                # (the first call, before the mode was known, asked for the values only)
                v = A.A21
                A = replace(A, A21=sp.csr_matrix((v.data, v.indices, v.indptr),
                                                 shape=v.shape))
            sysm.set_cross_products(A)
            return sysm.factorize(theta)
        lam1 = sysm.structures[0].lambda_(theta[sysm.slices[0]])
        p1 = self.p1
        m = A.AXX.shape[0]
        try:
            L11, m1, L1X, logdet = first_block_factor(lam1, A.A11, A.A1X)
        except np.linalg.LinAlgError:
            return None
        flat1X = L1X.reshape(-1, m)
        LXX = A.AXX - flat1X.T @ flat1X if need_xx else None
        L21 = L22 = LrX = None
        if A.A21 is not None:
            lam_r = np.repeat(
                np.array([s.lambda_(theta[sl])[0, 0] for s, sl in
                          zip(sysm.structures[1:], sysm.slices[1:], strict=True)]),
                self._rest_levels)
            L22 = A.A22 * np.outer(lam_r, lam_r)
            if self.mode == "pattern":
                data = A.A21.data * lam_r[self._rows21] * m1[self._cols21]
                L21 = PatternMatrix(self._rows21, self._cols21, data, (self.q_r, self.q1))
                prod = np.bincount(self._pair_flat, data[self._pair_a] * data[self._pair_b],
                                   minlength=self.q_r * self.q_r)
                L22 -= prod.reshape(self.q_r, self.q_r)      # lower triangle, as chol reads
            else:
                A21 = self._dense_a21(A.A21)
                if p1 == 1:
                    L21 = A21 * np.outer(lam_r, m1)
                else:
                    L21 = np.einsum("rla,lab->rlb", A21.reshape(self.q_r, self.l1, p1), m1)
                    L21 = L21.reshape(self.q_r, self.q1) * lam_r[:, None]
                L22 -= L21 @ L21.T
            L22[self._diag_r] += 1.0
            if not chol_inplace(L22):
                return None
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(L22))))
            LrX = solve_lower(L22, A.ArX * lam_r[:, None] - L21 @ flat1X)
            if need_xx:
                LXX -= LrX.T @ LrX
        if need_xx:
            LXX = np.ascontiguousarray(LXX)
            # the last pivot (the working response's residual) is never used -- beta comes
            # from the rows above it -- but is zero when the working response is fitted
            # exactly (a constant proportion: z = 0), which would fail the Cholesky; raising
            # that one diagonal entry changes nothing else in the factor
            LXX[-1, -1] += abs(LXX[-1, -1]) + 1.0
            # ... and with Newton's weights of both signs (PIRLS.indefinite_newton) the
            # residual's pivot can stay negative even so: a factorization that fails only
            # there (LAPACK's info equal to the size: every earlier column is complete)
            # is accepted, as the dense system does
            _, info = _dpotrf(LXX.T, lower=0, clean=0, overwrite_a=1)
            if info != 0 and info != m:
                return None
        return PIRLSFactor(L11, L21, L22, L1X, LrX, LXX, logdet)

    def solve_u(self, f, beta: np.ndarray) -> np.ndarray:
        """Random effects ``u`` at fixed ``beta`` by back-substitution (the last column of
        ``[X r]`` is the response)."""
        if not isinstance(f, PIRLSFactor):
            return self.system.solve_u(f, beta)
        p = beta.shape[0]
        c1 = f.L1X[:, :, p] - f.L1X[:, :, :p] @ beta              # (l1, p1)
        parts = []
        if f.L22 is not None:
            ur = solve_lower_t(f.L22, f.LrX[:, p] - f.LrX[:, :p] @ beta)
            c1 = c1 - (f.L21.T @ ur).reshape(c1.shape)
            parts.append(ur)
        if self.p1 == 1:
            u1 = c1[:, 0] / f.L11[:, 0, 0]
        else:
            u1 = np.linalg.solve(f.L11.transpose(0, 2, 1), c1[:, :, None])[:, :, 0]
        return np.concatenate([u1.ravel(), *parts])

    def _l21(self, f):
        if isinstance(f, PIRLSFactor):
            return f.L21
        return self.system.l21(f) if f.L22 is not None else None

    def forward(self, f, B: np.ndarray) -> np.ndarray:
        """``L_Z^{-1} B`` for a (q, m) matrix (``L_Z`` the random-effects block of L)."""
        L21 = self._l21(f)
        m, p1 = B.shape[1], self.p1
        B1 = B[:self.q1].reshape(self.l1, p1, m)
        c1 = B1[:, 0, :] / f.L11[:, 0, :] if p1 == 1 else np.linalg.solve(f.L11, B1)
        c1 = c1.reshape(self.q1, m)
        if L21 is None:
            return c1
        return np.vstack([c1, solve_lower(f.L22, B[self.q1:] - L21 @ c1)])

    def backward(self, f, C: np.ndarray) -> np.ndarray:
        """``L_Z^{-T} C`` for a (q, m) matrix."""
        L21 = self._l21(f)
        m, p1 = C.shape[1], self.p1
        c1 = C[:self.q1]
        parts = []
        if L21 is not None:
            ur = solve_lower_t(f.L22, C[self.q1:])
            c1 = c1 - L21.T @ ur
            parts.append(ur)
        if p1 == 1:
            u1 = c1 / f.L11[:, 0, :]
        else:
            u1 = np.linalg.solve(f.L11.transpose(0, 2, 1), c1.reshape(self.l1, p1, m))
        return np.vstack([u1.reshape(self.q1, m), *parts])

    def solve_M(self, f, B: np.ndarray) -> np.ndarray:
        """``(Lambda' Z' W Z Lambda + I)^{-1} B`` for a (q, m) matrix ``B``."""
        return self.backward(f, self.forward(f, B))

    @staticmethod
    def logdet(f) -> float:
        return f.logdet if isinstance(f, PIRLSFactor) else f.logdet_Z


class MergedPIRLSSystem:
    """A :class:`PIRLSSystem` on merged blocks that PIRLS uses in the terms' order.

    Terms on one grouping factor (``(x || g)``) are factored as one block of ``P = sum_k
    p_k`` effects per level (:class:`~mixedmodels.linalg.TermMerge`) instead of putting the
    later terms in the dense rest block; ``Lambda' Z' W Z Lambda + I`` of the merged order
    is ``Pi' M Pi`` of the terms' order for the permutation ``Pi`` of ``u``, so its log
    determinant is the same and every solve is the merged one with its right-hand side and
    solution permuted. Theta is taken in the terms' order and ``u`` given back in it.

    Parameters
    ----------
    inner : PIRLSSystem
        Built on ``merge.blocks`` and ``merge.structures``.
    merge : TermMerge
    """

    def __init__(self, inner: PIRLSSystem, merge):
        self.inner = inner
        self.merge = merge
        #: ``B_merged = B[to_merged]`` for a vector or matrix in the terms' order
        self._to_merged = np.argsort(merge.u_index)

    @property
    def needs_csr(self) -> bool:
        return self.inner.needs_csr

    def factor(self, theta: np.ndarray, A: CrossProducts, need_xx: bool = True):
        """:meth:`PIRLSSystem.factor` with theta in the terms' order."""
        return self.inner.factor(np.asarray(theta, dtype=float)[self.merge.theta_index], A,
                                 need_xx=need_xx)

    def solve_u(self, f, beta: np.ndarray) -> np.ndarray:
        """``u`` in the terms' order."""
        return self.inner.solve_u(f, beta)[self.merge.u_index]

    def solve_M(self, f, B: np.ndarray) -> np.ndarray:
        """``M^{-1} B`` with ``B`` (q, m) and the result in the terms' order."""
        return self.inner.solve_M(f, B[self._to_merged])[self.merge.u_index]

    @staticmethod
    def logdet(f) -> float:
        return PIRLSSystem.logdet(f)
